"""Prints the `app` service of docker-compose.yml as shell assignments: its environment
(with ${VAR}, ${VAR:-default} and ${VAR:?message} resolved as Compose does) and its
command, so the smoke test runs the binary exactly as the container would."""

import os
import re
import shlex
import sys

from ruamel.yaml import YAML

PATTERN = re.compile(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}")


def resolve(value: str) -> str:
    def substitute(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        current = os.environ.get(name, "")
        if current:
            return current
        if op == ":?":
            sys.exit(f"compose would refuse to start: {name}: {arg}")
        return arg if op == ":-" else ""

    return PATTERN.sub(substitute, str(value))


def main() -> None:
    compose_file, service = sys.argv[1], sys.argv[2]
    spec = YAML(typ="safe").load(open(compose_file))["services"][service]
    for key, value in spec["environment"].items():
        print(f"export {key}={shlex.quote(resolve(value))}")
    print("COMMAND=" + shlex.quote(" ".join(spec["command"])))


main()
