"""Limits of a pipeline file. Import-light on purpose: the DAG loader checks the size at parse time
without loading the YAML parser."""

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 50  # a pipeline file needs about 6 levels; deep nesting is a mistake or an attack
