"""The job's steps as pure DataFrame -> DataFrame functions; I/O lives in pipeline.py.

Column conventions: `_topic`, `_partition`, `_offset`, `_kafka_ts` are a record's Kafka coordinates and
travel with it to every layer. `_v` is its version (`record_version`): the broker's log-append time, then
the offset, then the partition, as one fixed-width string, so "later" holds for a key across partitions and
across a topic deleted and created again, where offsets alone restart or differ.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from lakehouse.catalog import KAFKA_COLUMNS
from lakehouse.contract import CATEGORY_SPECS, PRODUCT_SPECS, FieldSpec, java_regex, rule_names
from lakehouse.versions import MAX_VERSION_MILLIS, VERSION_FORMAT
from spark_jobs.schemas import CATEGORY_SCHEMA, PRODUCT_SCHEMA


def to_bronze(kafka_rows: DataFrame) -> DataFrame:
    """Kafka source rows -> bronze: every record as received, with its coordinates."""
    return kafka_rows.select(
        F.col("topic").alias("_topic"),
        F.col("partition").alias("_partition"),
        F.col("offset").alias("_offset"),
        F.col("timestamp").alias("_kafka_ts"),
        F.col("key").cast("string").alias("key"),
        F.col("value").alias("value"),
    )


# Strict JSON (RFC 8259). Spark's defaults also read 'single quotes' and NaN/Infinity, which no JSON
# document, BSON double check or chart can carry; a value holding them is not one JSON object.
JSON_OPTIONS = {"allowSingleQuotes": "false", "allowNonNumericNumbers": "false"}


def parse_json(bronze: DataFrame, schema: StructType) -> DataFrame:
    """Adds `record` (the typed struct; null unless the value is exactly one JSON object), `_fields` (each
    sent key's text: which fields were sent, and how often), `_canonical` (the value as Jackson re-writes
    it, for type checks), `raw_value`, the envelope checks and `_rescued_data` (unknown fields as JSON).

    Spark's parser reads the first JSON value and ignores what follows, so `{A}{B}` and `{A} junk` would
    pass as A. Two readings close that: inside `[...]`, anything after the value but `]` fails and a second
    value makes two elements; inside `{"v":...}`, a `]` right after the value fails. Only one value with
    nothing after it passes both. Each reading also yields something the rules need: the array's element
    is the canonical text, the object's member the typed record. Three parses per value in all
    (bench/validation.py measures them against the two of the checks before).
    """
    raw = F.col("value").cast("string")
    as_array = F.from_json(F.concat(F.lit("["), raw, F.lit("]")), "array<string>", JSON_OPTIONS)
    in_object = F.from_json(
        F.concat(F.lit('{"v":'), raw, F.lit("}")), StructType([StructField("v", schema)]), JSON_OPTIONS
    )
    record = F.when(F.size(as_array) == 1, in_object["v"])
    as_map = F.from_json(raw, "map<string,string>", JSON_OPTIONS)
    known = F.array(*[F.lit(name) for name in schema.fieldNames()])
    extras = F.map_filter(as_map, lambda key, _value: ~F.array_contains(known, key))
    return bronze.select(
        *KAFKA_COLUMNS,
        "key",
        raw.alias("raw_value"),
        # Spark decodes bad UTF-8 to U+FFFD; re-encoding then differs from the bytes that arrived.
        (F.encode(raw, "UTF-8") == F.col("value")).alias("_is_utf8"),
        record.isNotNull().alias("_is_json_object"),
        # get(), not [0]: an empty value reads as an empty array, and ANSI mode (Spark 4's default) fails
        # the whole batch on an index out of bounds; the rules quarantine that record instead.
        F.get(as_array, 0).alias("_canonical"),
        as_map.alias("_fields"),
        record.alias("record"),
        F.when(F.size(extras) > 0, F.to_json(extras)).alias("_rescued_data"),
    )


def _first_failure(rules: list[tuple[str, Column]]) -> Column:
    """The name of the first rule whose failure condition holds, else null."""
    # One flat CASE WHEN (not nested ones): Spark splits its branches into methods small enough for the JIT.
    (first_name, first_fails), *rest = rules
    reason = F.when(first_fails, F.lit(first_name))
    for name, fails in rest:
        reason = reason.when(fails, F.lit(name))
    return reason


# A \\uD800-\\uDFFF escape that is not half of a pair: valid JSON text, but no Unicode string. Spark would
# read it as "?"; the API (pydantic) refuses it. A backslash preceded by an odd number of backslashes is text.
_HIGH, _LOW = r"\\u[dD][89abAB][0-9a-fA-F]{2}", r"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
LONE_SURROGATE_ESCAPE = rf"(?<!\\)(?:\\\\)*(?:{_HIGH}(?!{_LOW})|(?<!{_HIGH}){_LOW})"


def _has_lone_surrogate_escape(raw: Column) -> Column:
    maybe = raw.contains("\\ud") | raw.contains("\\uD")  # the regex only where it can match
    return maybe & raw.rlike(LONE_SURROGATE_ESCAPE)


def _envelope_rules() -> list[tuple[str, Column]]:
    millis = F.unix_millis(F.col("_kafka_ts"))
    return [
        ("_kafka_ts: not a time from 1970 to 2286", ~F.coalesce(millis.between(0, MAX_VERSION_MILLIS), F.lit(False))),
        ("value: not valid UTF-8", ~F.col("_is_utf8")),
        ("value: a lone surrogate escape (not Unicode text)", _has_lone_surrogate_escape(F.col("raw_value"))),
        ("value: not one JSON object", ~F.coalesce(F.col("_is_json_object"), F.lit(False))),
        # Spark's map keeps both entries (and a lookup finds the first); json.loads would keep the last.
        ("value: a key appears twice", F.size("_fields") != F.size(F.array_distinct(F.map_keys("_fields")))),
    ]


def _is_space(text: Column) -> Column:
    """Whether the first character has Unicode's White_Space property (what Rust's trim removes), by code
    point (Spark's ascii() returns the first character's code point): cheaper than a regex per value."""
    code = F.ascii(text)
    return code.between(9, 13) | code.between(8192, 8202) | code.isin(32, 133, 160, 5760, 8232, 8233, 8239, 8287, 12288)


def stripped(text: Column) -> Column:
    """pydantic's strip_whitespace (Rust's str::trim: Unicode White_Space), in Java regex terms; the
    regex runs only on values whose first or last character is a space."""
    padded = _is_space(text) | _is_space(F.substring(text, -1, 1))
    return F.when(padded, F.regexp_replace(text, r"(?U)^\s+|\s+$", "")).otherwise(text)


def with_contract_values(parsed: DataFrame, specs: tuple[FieldSpec, ...]) -> DataFrame:
    """Adds `_value`: each field as the contract reads it (stripped if the model strips it; null when
    absent or mistyped), computed once for all the rules that read it."""
    values = [
        (stripped(F.col(f"record.{s.name}")) if s.strip else F.col(f"record.{s.name}")).alias(s.name) for s in specs
    ]
    return parsed.withColumn("_value", F.struct(*values))


def field_value(spec: FieldSpec) -> Column:
    return F.col(f"_value.{spec.name}")


def _mistyped_string(spec: FieldSpec) -> Column:
    """True when a string field's JSON token was not a string. Spark's StringType reads any token as text
    (123 as "123"), so look at the re-serialized value: there, `{` or `,` then `"name":` is always a member
    (inside a string every quote is escaped), and a string member continues with a quote. A nested member
    of the same name counts too; nesting only occurs in fields the contract refuses or rescues."""
    if spec.kind != "string":
        return F.lit(False)
    canonical, member = F.col("_canonical"), f'"{spec.name}":'
    # Usually the name occurs once: plain substring checks. Else (nested objects, keys ending in the name)
    # the regex looks at every occurrence that is a member and refuses if any is not a string.
    at = F.instr(canonical, member)
    after = at + len(member)
    once = F.instr(canonical.substr(after, F.length(canonical)), member) == 0
    is_member = canonical.substr(at - 1, F.lit(1)).isin("{", ",")
    unquoted_once = (
        is_member & (canonical.substr(after, F.lit(1)) != '"') & (canonical.substr(after, F.lit(4)) != "null")
    )
    unquoted_any = canonical.rlike('[{,]"' + re.escape(spec.name) + '":(?!"|null[,}])')
    not_quoted = F.when(once, unquoted_once).otherwise(unquoted_any)
    # A number beyond a double (1e400) is re-written as the quoted "Infinity"; a real string reads unquoted.
    value = F.col(f"record.{spec.name}")
    overflowed = value.isin('"Infinity"', '"-Infinity"') & canonical.contains(F.concat(F.lit(member), value))
    return not_quoted | overflowed


def _failure(spec: FieldSpec, rule: str) -> Column:
    value = field_value(spec)
    sent = F.col("_fields")[spec.name].isNotNull()
    conditions: dict[str, Callable[[], Column]] = {
        "missing": lambda: ~sent,
        "type": lambda: sent & (value.isNull() | _mistyped_string(spec)),
        "finite": lambda: F.isnan(value) | (F.abs(value) == float("inf")),
        "ge": lambda: value < spec.ge,
        "gt": lambda: value <= spec.gt,
        "le": lambda: value > spec.le,
        "min_length": lambda: F.length(value) < spec.min_length,
        "max_length": lambda: F.length(value) > spec.max_length,
        "pattern": lambda: ~value.rlike(java_regex(spec.pattern or "")),
    }
    return conditions[rule]()


def contract_rules(specs: tuple[FieldSpec, ...]) -> list[tuple[str, Column]]:
    """Every rule of the contract, in the order they are checked; each pairs a reason with its failure."""
    return [
        *_envelope_rules(),
        *[(reason, _failure(spec, rule)) for spec in specs for rule, reason in rule_names(spec)],
    ]


def with_failure_reason(parsed: DataFrame, rules: list[tuple[str, Column]]) -> DataFrame:
    return parsed.withColumn("_error", _first_failure(rules))


RAW_VALUE_CHARACTERS = 10_000  # of a quarantined value kept in the quarantine (its full length beside it)


def record_id() -> Column:
    """`<topic>:<partition>:<offset>@<broker ms>`: a Kafka record's identity. The time tells apart two
    generations of a topic deleted and created again, whose offsets restart at 0."""
    coordinates = F.concat_ws(":", "_topic", "_partition", "_offset")
    return F.concat(coordinates, F.lit("@"), F.unix_millis(F.col("_kafka_ts")).cast("string"))


def quarantined(checked: DataFrame) -> DataFrame:
    """Records that failed a rule, with the reason and what is needed to find and replay them."""
    return checked.where(F.col("_error").isNotNull()).select(
        record_id().alias("_id"),
        *KAFKA_COLUMNS,
        "key",
        F.col("_error").alias("reason"),
        F.substring("raw_value", 1, RAW_VALUE_CHARACTERS).alias("raw_value"),
        F.length("raw_value").alias("raw_length"),
    )


def record_version(timestamp: Column, offset: Column, partition: Column) -> Column:
    """A record's version, ordered as text (Delta's and MongoDB's string comparison): `<ms>.<offset>.<partition>`,
    e.g. `1764470000123.0000000000000000042.0000000002`, 13 + 19 + 10 digits.

    The broker's log-append time (topics use message.timestamp.type=LogAppendTime, checked at the job's
    start) orders a key's records across partitions and topic generations; within one millisecond the offset
    orders a partition's records, and the partition breaks the remaining tie. Two writes of one key on two
    partitions within the same millisecond (or within the brokers' clock skew) may be ordered either way:
    they were concurrent. The CSV backfill's partition -1 breaks that last tie below the others.
    """
    return F.format_string(VERSION_FORMAT, F.unix_millis(timestamp), offset, partition)


def with_version(records: DataFrame) -> DataFrame:
    return records.withColumn("_v", record_version(F.col("_kafka_ts"), F.col("_offset"), F.col("_partition")))


def latest_per_key(records: DataFrame, key: str) -> DataFrame:
    """One row per key: the highest `_v` (the key's latest record) wins."""
    newest_first = Window.partitionBy(key).orderBy(F.col("_v").desc())
    return records.withColumn("_rank", F.row_number().over(newest_first)).where("_rank = 1").drop("_rank")


def contract_columns(specs: tuple[FieldSpec, ...]) -> list[Column]:
    """A valid record's fields as the contract defines them: stripped, and defaulted when absent."""
    return [
        (F.coalesce(field_value(spec), F.lit(spec.default)) if not spec.required else field_value(spec)).alias(
            spec.name
        )
        for spec in specs
    ]


def valid_product_versions(checked: DataFrame) -> DataFrame:
    """Checked product rows -> typed silver columns with `_v`, every valid version (the price history's)."""
    typed = checked.where(F.col("_error").isNull()).select(
        *contract_columns(PRODUCT_SPECS), "_rescued_data", *KAFKA_COLUMNS
    )
    return with_version(typed)


def valid_products(checked: DataFrame) -> DataFrame:
    """Checked product rows -> typed silver columns, one row per asin."""
    return latest_per_key(valid_product_versions(checked), "asin")


def valid_categories(checked: DataFrame) -> DataFrame:
    typed = checked.where(F.col("_error").isNull()).select(*contract_columns(CATEGORY_SPECS), *KAFKA_COLUMNS)
    return latest_per_key(with_version(typed), "id")


def enrich_with_categories(products: DataFrame, categories: DataFrame) -> DataFrame:
    """Adds category_name; a product whose category has not arrived yet keeps a null name."""
    names = categories.select(F.col("id").alias("category_id"), "category_name")
    return products.join(names, on="category_id", how="left")


def parse_products(bronze: DataFrame) -> DataFrame:
    parsed = with_contract_values(parse_json(bronze, PRODUCT_SCHEMA), PRODUCT_SPECS)
    return with_failure_reason(parsed, contract_rules(PRODUCT_SPECS))


def parse_categories(bronze: DataFrame) -> DataFrame:
    parsed = with_contract_values(parse_json(bronze, CATEGORY_SCHEMA), CATEGORY_SPECS)
    return with_failure_reason(parsed, contract_rules(CATEGORY_SPECS))
