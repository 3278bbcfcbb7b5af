"""The check types of ``quality_checks``: one frozen model per type, registered by its ``type``.

These models are the single definition of a check: the YAML factory validates into them, Python
DAG authors build them directly (or pass plain dicts), and every engine (SQL, pandas, Great
Expectations) evaluates them. No Airflow imports here.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from airflow_dataops.config.errors import shown
from airflow_dataops.config.types import Change, ColumnName, Duration, Percent, PlainText, TableName

Scalar = Union[bool, int, float, PlainText]


class StrictModel(BaseModel):
    """Unknown keys are errors; models are frozen once validated; nothing is coerced (strict mode:
    ``"yes"`` is not a bool, ``"3"`` not a number, ``500.0`` not a whole number). Durations,
    percentages and ISO dates are parsed from text by their own validators."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)


class BaseCheck(StrictModel):
    type: str
    name: PlainText | None = Field(
        None, description="Stable identity in history, alerts and environment overrides. "
        "Default: derived from the type and columns.",
    )
    action: Literal["fail", "warn"] = Field("fail", description="`fail` fails the task; `warn` only records and alerts.")
    where: str | None = Field(
        None, description="Templated SQL condition limiting the rows checked, e.g. "
        "`created_at >= '{{ data_interval_start }}'`. Dropped (with a note) on runs without a data interval.",
    )
    conn_id: PlainText | None = Field(None, description="Override of the dataset's connection.")
    table: TableName | None = Field(None, description="Override of the dataset's table (optionally schema.table).")
    engine: Literal["sql", "pandas", "great_expectations"] | None = Field(
        None, description="Run this check with another engine. Default: sql, or pandas with `source_task`."
    )
    source_task: PlainText | None = Field(
        None, description="Id of a `python` task returning a DataFrame; the check then runs on it with pandas."
    )

    # Checks whose SQL form is a single aggregate over the table (folded into one scan).
    aggregate: ClassVar[bool] = True

    def column_list(self) -> tuple[str, ...]:
        columns = getattr(self, "columns", None)
        if columns:
            return tuple(c if isinstance(c, str) else c.name for c in columns)
        column = getattr(self, "column", None)
        return (column,) if column else ()

    @property
    def check_name(self) -> str:
        """The explicit ``name`` or one derived from type and columns (``null_check_order_id``)."""
        if self.name:
            return self.name
        return "_".join((self.type, *self.column_list()))

    @property
    def effective_engine(self) -> str:
        if self.engine:
            return self.engine
        if self.type == "expectation":
            return "great_expectations"
        return "pandas" if self.source_task else "sql"


class RowCountCheck(BaseCheck):
    type: Literal["row_count"]
    threshold: int | None = Field(None, ge=0, description="Minimum row count (same as `min`).")
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> RowCountCheck:
        if self.threshold is not None and self.min is not None:
            raise ValueError("give either `threshold` or `min` (they mean the same), not both")
        if self.threshold is None and self.min is None and self.max is None:
            raise ValueError("row_count needs `threshold` (a minimum), or `min` and/or `max`")
        low = self.min_rows
        if low is not None and self.max is not None and low > self.max:
            raise ValueError(f"minimum {low} is above maximum {self.max}")
        return self

    @property
    def min_rows(self) -> int | None:
        return self.threshold if self.threshold is not None else self.min


class NullCheck(BaseCheck):
    type: Literal["null_check"]
    columns: list[ColumnName] = Field(min_length=1)
    max_nulls: int | None = Field(None, ge=0, description="Nulls allowed per column (default 0).")
    max_null_pct: Percent | None = Field(None, description='Share of nulls allowed per column, like "0.5%".')

    @model_validator(mode="after")
    def _one_limit(self) -> NullCheck:
        if self.max_nulls is not None and self.max_null_pct is not None:
            raise ValueError("give either `max_nulls` or `max_null_pct`, not both")
        return self


class CompletenessCheck(BaseCheck):
    type: Literal["completeness"]
    columns: list[ColumnName] = Field(min_length=1)
    min_pct: Percent = Field(description='Minimum share of non-null values per column, like "99.5%".')


class UniqueCheck(BaseCheck):
    type: Literal["unique"]
    columns: list[ColumnName] = Field(min_length=1, description="One column, or several: their combination is unique.")


class AcceptedValuesCheck(BaseCheck):
    type: Literal["accepted_values"]
    column: ColumnName
    values: list[Scalar] = Field(min_length=1)


class RangeCheck(BaseCheck):
    type: Literal["range"]
    column: ColumnName
    min: int | float | dt.datetime | dt.date | None = None
    max: int | float | dt.datetime | dt.date | None = None

    @field_validator("min", "max", mode="before")
    @classmethod
    def _parse_bound(cls, value: Any) -> Any:
        if isinstance(value, str):
            for parse in (dt.date.fromisoformat, dt.datetime.fromisoformat):
                try:
                    return parse(value)
                except ValueError:
                    continue
            raise ValueError(f"{shown(value)} is neither a number nor an ISO date/timestamp (like 2024-01-31 or 2024-01-31T12:00:00)")
        return value

    @model_validator(mode="after")
    def _some_bound(self) -> RangeCheck:
        if self.min is None and self.max is None:
            raise ValueError("range needs `min` and/or `max`")
        return self


class PatternCheck(BaseCheck):
    type: Literal["pattern"]
    column: ColumnName
    regex: PlainText

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        import re

        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{shown(value)} is not a valid regular expression: {exc}") from None
        return value


class FreshnessCheck(BaseCheck):
    type: Literal["freshness"]
    column: ColumnName | None = Field(None, description="Default: the dataset's `timestamp_column`.")
    max_age: Duration | None = None
    warn_after: Duration | None = None
    error_after: Duration | None = None

    @model_validator(mode="after")
    def _ages(self) -> FreshnessCheck:
        if self.max_age is None and self.warn_after is None and self.error_after is None:
            raise ValueError("freshness needs `max_age`, or `warn_after` and/or `error_after`")
        if self.max_age is not None and (self.warn_after or self.error_after):
            raise ValueError("give either `max_age` or `warn_after`/`error_after`, not both")
        if self.warn_after and self.error_after and self.warn_after >= self.error_after:
            raise ValueError("`warn_after` must be shorter than `error_after`")
        return self


class SchemaColumn(StrictModel):
    name: ColumnName
    type: PlainText | None = Field(None, description="Expected type, compared loosely (VARCHAR matches varchar(255)).")


class SchemaCheck(BaseCheck):
    type: Literal["schema"]
    columns: list[SchemaColumn] = Field(min_length=1)
    strict: bool = Field(False, description="When true, the table may have no other columns.")
    aggregate: ClassVar[bool] = False


class ReferentialCheck(BaseCheck):
    type: Literal["referential"]
    column: ColumnName
    parent_table: TableName
    parent_column: ColumnName
    parent_conn_id: PlainText | None = Field(None, description="Must equal the child's connection: one database, one query.")
    aggregate: ClassVar[bool] = False


class SqlCheck(BaseCheck):
    type: Literal["sql"]
    sql: str = Field(description="Inline SQL or a path to a .sql file (relative to the pipeline file); templated.")
    expect: Literal["no_rows", "truthy"] = "no_rows"
    aggregate: ClassVar[bool] = False


class VolumeAnomalyCheck(BaseCheck):
    type: Literal["volume_anomaly"]
    lookback: int = Field(14, ge=2, le=1000, description="How many past successful runs to compare with.")
    max_change_pct: Change | None = Field(None, description='Largest change from the recent mean, like "50%" (may exceed 100%).')
    max_stddev: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_limit(self) -> VolumeAnomalyCheck:
        if (self.max_change_pct is None) == (self.max_stddev is None):
            raise ValueError("volume_anomaly needs exactly one of `max_change_pct` or `max_stddev`")
        return self


class ExpectationCheck(BaseCheck):
    type: Literal["expectation"]
    expectation: PlainText = Field(description="A Great Expectations 1.x expectation, e.g. expect_column_values_to_be_between.")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    aggregate: ClassVar[bool] = False

    @field_validator("expectation")
    @classmethod
    def _snake_case(cls, value: str) -> str:
        if not value.startswith("expect_") or not value.replace("_", "").isalnum():
            raise ValueError(f"{shown(value)} is not an expectation name: use the snake_case name, like expect_column_values_to_not_be_null")
        return value


CHECK_TYPES: dict[str, type[BaseCheck]] = {
    model.model_fields["type"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in (
        RowCountCheck, NullCheck, CompletenessCheck, UniqueCheck, AcceptedValuesCheck, RangeCheck,
        PatternCheck, FreshnessCheck, SchemaCheck, ReferentialCheck, SqlCheck, VolumeAnomalyCheck,
        ExpectationCheck,
    )
}

Check = Annotated[Union[tuple(CHECK_TYPES.values())], Field(discriminator="type")]  # type: ignore[valid-type]
_CHECKS_ADAPTER: TypeAdapter[list[Check]] = TypeAdapter(list[Check])


def parse_checks(checks: list[BaseCheck | dict[str, Any]]) -> list[BaseCheck]:
    """Checks given as models or plain dicts (the Python-DAG form) -> validated models."""
    return list(_CHECKS_ADAPTER.validate_python([c if isinstance(c, dict) else c.model_dump(exclude_unset=True) for c in checks]))
