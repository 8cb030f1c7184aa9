#!/usr/bin/env python3
"""Cut the Messages create operation, and every schema it refers to, out of
Twilio's OpenAPI description (twilio_api_v2010.json, 1.8 MB), so that the
sandbox validates against Twilio's own words without shipping the whole file.

    openapi_excerpt.py FULL_SPEC > tests/sandbox/twilio-messages-openapi.json
    openapi_excerpt.py --check FULL_SPEC tests/sandbox/twilio-messages-openapi.json
"""
import json
import sys

MESSAGES_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
MESSAGE_SCHEMA = "api.v2010.account.message"


def refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def excerpt(spec):
    out = {
        "openapi": spec["openapi"],
        "info": spec["info"],
        "x-excerpt": "Messages create operation of Twilio's twilio_api_v2010.json "
                     "(twilio/twilio-oai), cut by tests/sandbox/openapi_excerpt.py",
        "paths": {MESSAGES_PATH: {"post": spec["paths"][MESSAGES_PATH]["post"]}},
        "components": {"schemas": {MESSAGE_SCHEMA: spec["components"]["schemas"][MESSAGE_SCHEMA]}},
    }
    todo = list(refs(out["paths"])) + list(refs(out["components"]))
    while todo:
        parts = todo.pop().removeprefix("#/").split("/")
        node, target = spec, out
        for i, part in enumerate(parts):
            node = node[part]
            if i < len(parts) - 1:
                target = target.setdefault(part, {})
        if parts[-1] not in target:
            target[parts[-1]] = node
            todo.extend(refs(node))
    return out


def render(spec):
    return json.dumps(excerpt(spec), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv):
    if len(argv) == 3 and argv[0] == "--check":
        with open(argv[1], encoding="utf-8") as full, open(argv[2], encoding="utf-8") as cut:
            same = render(json.load(full)) == cut.read()
        print("the excerpt matches Twilio's description" if same else
              "the excerpt differs from Twilio's description: regenerate it")
        return 0 if same else 1
    if len(argv) == 1:
        with open(argv[0], encoding="utf-8") as full:
            sys.stdout.write(render(json.load(full)))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
