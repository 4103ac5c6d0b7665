"""Run a declarative manifest file through airbyte-cdk, as Airbyte's runtime would, with the
clock frozen at $SLUICE_DIFF_NOW so date windows and `now_utc()` give the same requests in every
run. Usage: cdk_run.py PACKAGE (spec|check|discover|read) --manifest-path M [--config C]
[--catalog CAT] [--state S]. PACKAGE (`source_acme`) is imported first: the CDK's
JsonFileSchemaLoader reads the stream schemas from that package."""

import importlib
import os
import sys

from airbyte_cdk.entrypoint import AirbyteEntrypoint, launch
from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource
from freezegun import freeze_time


def main(argv):
    package, args = argv[0], list(argv[1:])
    importlib.import_module(package)
    i = args.index("--manifest-path")
    manifest = args[i + 1]
    del args[i : i + 2]
    freeze_time(os.environ["SLUICE_DIFF_NOW"]).start()
    parsed = AirbyteEntrypoint.parse_args(args)
    config_path = getattr(parsed, "config", None)
    config = YamlDeclarativeSource.read_config(config_path) if config_path else None
    catalog_path = getattr(parsed, "catalog", None)
    catalog = YamlDeclarativeSource.read_catalog(catalog_path) if catalog_path else None
    state_path = getattr(parsed, "state", None)
    state = YamlDeclarativeSource.read_state(state_path) if state_path else []
    source = YamlDeclarativeSource(
        path_to_yaml=manifest,
        config=config,
        catalog=catalog,
        state=state,
        config_path=config_path,
    )
    launch(source, args)


if __name__ == "__main__":
    main(sys.argv[1:])
