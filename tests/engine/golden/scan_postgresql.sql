SELECT count(*) AS m0, count(analytics.orders.id) AS m1, count(analytics.orders.status) AS m2, count(DISTINCT analytics.orders.id) AS m3, count(CASE WHEN ((analytics.orders.status NOT IN (%(param_1)s::VARCHAR, %(param_2)s::VARCHAR, %(param_3)s::VARCHAR))) THEN 1 END) AS m4, count(CASE WHEN (analytics.orders.amount < %(param_4)s::INTEGER OR analytics.orders.amount > %(param_5)s::INTEGER) THEN 1 END) AS m5, max(analytics.orders.updated_at) AS m6, count(analytics.orders.email) AS m7 
FROM analytics.orders 
WHERE (status <> 'void')
-- params: {'param_1': 'new', 'param_2': 'paid', 'param_3': 'shipped', 'param_4': 0, 'param_5': 1000}
