#!/usr/bin/env python3
"""Writes the API reference (API.md beside the package README) from the installed package's
signatures and docstrings: `python3 clients/python/docs/gen_api.py > clients/python/API.md`."""

import inspect

import ringblob

SECTIONS = [
    ("Clients", [ringblob.Client, ringblob.AsyncClient]),
    ("Files", [ringblob.ObjectFile, ringblob.AsyncObjectFile]),
    ("Values", [ringblob.Meta, ringblob.Entry]),
    ("Errors", [getattr(ringblob, n) for n in ringblob.__all__
                if isinstance(getattr(ringblob, n), type)
                and issubclass(getattr(ringblob, n), ringblob.RingblobError)]),
]


def doc(obj) -> str:
    return inspect.cleandoc(obj.__doc__ or "").strip()


def signature(obj) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"


def main() -> None:
    print("# `ringblob` API reference\n")
    print(f"Generated from version {ringblob.__version__} by `docs/gen_api.py`.\n")
    for title, classes in SECTIONS:
        print(f"## {title}\n")
        for cls in classes:
            print(f"### `{cls.__name__}`\n")
            if doc(cls):
                print(doc(cls) + "\n")
            if title == "Errors":
                continue
            for name, member in inspect.getmembers(cls):
                if name.startswith("_") and name not in ("__init__",):
                    continue
                if inspect.isfunction(member) or inspect.iscoroutinefunction(member) \
                        or inspect.isasyncgenfunction(member):
                    kind = "async " if (inspect.iscoroutinefunction(member)
                                        or inspect.isasyncgenfunction(member)) else ""
                    print(f"- `{kind}{name}{signature(member)}`")
                    if doc(member):
                        text = doc(member).replace("\n", "\n  ")
                        print(f"  {text}")
                elif isinstance(member, (property,)) or type(member).__name__ == "getset_descriptor":
                    line = f"- `{name}` (attribute)"
                    print(line)
            print()


if __name__ == "__main__":
    main()
