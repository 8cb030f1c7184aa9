#!/usr/bin/env python3
"""Cut the Messages create operation out of Twilio's OpenAPI description of its
API (twilio_api_v2010.json, 1.8 MB), and the Messaging Service fetch out of its
description of the Messaging API (twilio_messaging_v1.json), each with every
schema it refers to, so that the sandbox validates against Twilio's own words
without shipping the whole files.

    openapi_excerpt.py API_SPEC MESSAGING_SPEC > tests/sandbox/twilio-messages-openapi.json
    openapi_excerpt.py --check API_SPEC MESSAGING_SPEC tests/sandbox/twilio-messages-openapi.json
"""
import json
import sys

MESSAGES_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
MESSAGE_SCHEMA = "api.v2010.account.message"
SERVICE_PATH = "/v1/Services/{Sid}"
SERVICE_SCHEMA = "messaging.v1.service"


def refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def copy_refs(spec, out, todo):
    """Copy into out every node of spec that the $refs in todo name, and theirs."""
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
        elif target[parts[-1]] != node:
            raise ValueError(f"{'/'.join(parts)} differs between the two descriptions")


def excerpt(spec, messaging):
    # the Services path keeps its own servers entry: it is served by messaging.twilio.com
    service_path = {key: value for key, value in messaging["paths"][SERVICE_PATH].items()
                    if key in ("servers", "get")}
    out = {
        "openapi": spec["openapi"],
        "info": spec["info"],
        "x-excerpt": "Messages create operation of Twilio's twilio_api_v2010.json and Messaging "
                     "Service fetch of its twilio_messaging_v1.json (twilio/twilio-oai), cut by "
                     "tests/sandbox/openapi_excerpt.py",
        "paths": {MESSAGES_PATH: {"post": spec["paths"][MESSAGES_PATH]["post"]}},
        "components": {"schemas": {MESSAGE_SCHEMA: spec["components"]["schemas"][MESSAGE_SCHEMA]}},
    }
    copy_refs(spec, out, list(refs(out["paths"])) + list(refs(out["components"])))
    out["paths"][SERVICE_PATH] = service_path
    out["components"]["schemas"][SERVICE_SCHEMA] = messaging["components"]["schemas"][SERVICE_SCHEMA]
    copy_refs(messaging, out, list(refs(service_path)) +
              list(refs(out["components"]["schemas"][SERVICE_SCHEMA])))
    return out


def render(spec, messaging):
    return json.dumps(excerpt(spec, messaging), indent=1, sort_keys=True,
                      ensure_ascii=False) + "\n"


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main(argv):
    if len(argv) == 4 and argv[0] == "--check":
        with open(argv[3], encoding="utf-8") as cut:
            same = render(load(argv[1]), load(argv[2])) == cut.read()
        print("the excerpt matches Twilio's descriptions" if same else
              "the excerpt differs from Twilio's descriptions: regenerate it")
        return 0 if same else 1
    if len(argv) == 2:
        sys.stdout.write(render(load(argv[0]), load(argv[1])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
