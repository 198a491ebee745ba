"""Fields: each record (a JSON object, a CSV row) mapped to a row by the definition's `fields`.
"""

from __future__ import annotations

import json
from typing import Any

from lambdasette.imports.definition import TYPES, Definition, ImportFailed


def dig(value: Any, path: str) -> Any:
    for part in filter(None, path.split(".")):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _stored(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value


def map_record(definition: Definition, record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ImportFailed(f"{where}: a record is not an object")
    if definition.fields is None:
        row = {k: _stored(v) for k, v in record.items()}
    else:
        row = {}
        for column, spec in definition.fields.items():
            if isinstance(spec, str):
                row[column] = _stored(dig(record, spec))
                continue
            value = dig(record, spec["path"])
            if spec.get("names") is not None and value is not None:
                if not isinstance(value, list):
                    raise ImportFailed(f"{where}: `{spec['path']}` is not a list")
                value = [item.get(spec["names"]) if isinstance(item, dict) else item for item in value]
            kind = spec.get("type")
            if kind is not None and value is not None and value != "":
                try:
                    value = TYPES[kind](value)
                    if kind == "integer" and isinstance(value, float):
                        raise ValueError
                except (TypeError, ValueError):
                    raise ImportFailed(f"{where}: field {column} expects {kind}, got {value!r}") from None
            elif kind is not None and value == "":
                value = None
            row[column] = _stored(value)
    for key in definition.pks:
        if row.get(key) in (None, ""):
            raise ImportFailed(f"{where}: missing primary key {key}")
    return row
