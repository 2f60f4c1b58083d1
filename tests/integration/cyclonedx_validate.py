#!/usr/bin/python3
"""Validates CycloneDX JSON documents against the 1.6 schema committed under
tests/schemas/cyclonedx (with the SPDX license list and JSF schemas it refers
to), offline: every $ref resolves to a local copy, nothing is fetched.

usage: cyclonedx_validate.py SCHEMA_DIR FILE...    exit 0 valid, 1 invalid, 2 usage
"""
import json
import os
import sys

import jsonschema


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    sdir = sys.argv[1]
    store = {}
    for name in ("bom-1.6.schema.json", "spdx.schema.json", "jsf-0.82.schema.json"):
        with open(os.path.join(sdir, name), encoding="utf-8") as f:
            doc = json.load(f)
        store[name] = doc
        if "$id" in doc:
            store[doc["$id"]] = doc
    schema = store["bom-1.6.schema.json"]
    resolver = jsonschema.RefResolver(schema["$id"], schema, store=store)
    validator = jsonschema.Draft7Validator(schema, resolver=resolver,
                                           format_checker=jsonschema.FormatChecker())
    bad = 0
    for path in sys.argv[2:]:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        for e in errors[:20]:
            print("%s: %s: %s" % (path, "/".join(str(p) for p in e.path) or "(root)", e.message))
        if errors:
            bad = 1
        else:
            print("%s: valid CycloneDX %s" % (path, doc.get("specVersion")))
    return bad


if __name__ == "__main__":
    sys.exit(main())
