-- Payments joined to their orders: the table the payments_daily checks look at.
DROP TABLE IF EXISTS payments_enriched;
CREATE TABLE payments_enriched AS
SELECT p.payment_id,
       p.order_id,
       o.customer_id,
       p.method,
       p.amount,
       o.currency,
       o.created_at AS ordered_at,
       p.paid_at
FROM payments AS p
JOIN orders AS o ON o.order_id = p.order_id;
