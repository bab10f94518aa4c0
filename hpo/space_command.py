"""`hpo space convert FILE`: a W&B sweep or a Ray Tune-style space as hpo's space YAML.

    hpo space convert sweep.yaml                 # hpo's YAML on stdout, notes on stderr
    hpo space convert sweep.yaml -o space.yaml   # written atomically

The result is checked as a space file is (hpo.space.space_from_dict) before it is printed or
written: what has no equivalent in hpo's space is `hpo: error: FILE: what (KEY)`, exit 2, and
no file. See hpo.space.foreign for what is converted and how.
"""

from __future__ import annotations

import argparse
import sys

from hpo.terminal import printable


def add_space_command(commands: argparse._SubParsersAction) -> None:
    """Add `space convert` to the `hpo` command's subparsers."""
    space = commands.add_parser("space", help="search spaces: convert W&B and Ray Tune spaces")
    actions = space.add_subparsers(title="actions")
    convert = actions.add_parser(
        "convert", help="print a W&B sweep or Ray Tune-style space as hpo's space YAML"
    )
    convert.add_argument("file", help="the space file (a W&B sweep, a Ray Tune-style YAML)")
    convert.add_argument("-o", "--output", help="write it here (atomically) instead of stdout")
    convert.set_defaults(command=cmd_space_convert)
    space.set_defaults(command=lambda args: _usage(space))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def convert_space_file(path: str) -> tuple[str, list[str]]:
    """(hpo's space YAML, notes) of the space file at `path`, checked as a space file is."""
    from pathlib import Path

    import yaml

    from hpo.space import SpaceError, space_from_dict, with_line
    from hpo.space.foreign import to_hpo_space, with_original_key
    from runner.yaml_io import load_yaml_file

    raw = load_yaml_file(Path(path), "space file", SpaceError)
    converted, notes, original_key = to_hpo_space(raw, path)
    try:
        space_from_dict(converted, path)  # what hpo search would refuse is refused here too
    except SpaceError as err:
        raise with_line(with_original_key(err, original_key), path) from None
    if converted is raw:
        notes = [*notes, "already hpo's space format: printed as it is"]
    elif not isinstance(converted, dict) or "experiment" not in converted:
        notes.append("no experiment: add `experiment: PATH`, or search with --objective")
    return yaml.safe_dump(
        converted, sort_keys=False, allow_unicode=True, default_flow_style=None
    ), notes


def cmd_space_convert(args: argparse.Namespace) -> int:
    text, notes = convert_space_file(args.file)
    for note in notes:
        print(f"hpo: note: {printable(note)}", file=sys.stderr)
    if args.output:
        from runner.files import atomic_write_text

        atomic_write_text(args.output, text)
        print(f"wrote {printable(args.output)}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
