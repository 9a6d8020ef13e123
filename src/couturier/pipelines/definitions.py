"""What ``dagster dev -m couturier.pipelines.definitions`` loads: every installed domain."""

from couturier.pipelines._definitions import build_definitions

defs = build_definitions()
