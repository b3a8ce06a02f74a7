"""A linter for dangerous migrations, read from the release's own migration files.

During a deploy the previous release keeps serving on the schema the new release's
migrations just changed (expand/contract), so a migration must not take away or rename what
the previous release reads, nor add a column the previous release cannot insert rows
without. This reads a migration's source with `ast` (wtx never imports Django) and names
every operation that does:

- RemoveField, DeleteModel, RenameField, RenameModel, AlterModelTable: the previous release
  still reads them;
- AlterField that sets db_column: a rename of the column in disguise;
- AlterField to a field without null=True and without a default: may make a column NOT NULL
  that the previous release leaves empty (the linter cannot see the field's earlier state,
  so a harmless AlterField of a NOT NULL field is named too: allow it by name in the spec);
- AddField of a NOT NULL field without db_default: the previous release's INSERTs fail;
- RunSQL whose SQL drops or renames something.

A finding is an opinion about one migration; the spec's `allow` list (by migration name,
`app.0007_name`) records the decisions to go ahead anyway.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

REMOVING = {
    "RemoveField": "removes a column the previous release still reads",
    "DeleteModel": "drops a table the previous release still reads",
    "RenameField": "renames a column the previous release still reads by its old name",
    "RenameModel": "renames a table the previous release still reads by its old name",
    "AlterModelTable": "renames a table the previous release still reads by its old name",
}
_DANGEROUS_SQL = re.compile(r"\b(DROP\s+(TABLE|COLUMN|VIEW|INDEX|CONSTRAINT|SCHEMA)|RENAME\s+(COLUMN|TO)|TRUNCATE)\b",
                            re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    migration: str        # app.0007_name
    operation: str        # RemoveField
    target: str           # model.field (or the SQL's first words)
    why: str

    def __str__(self) -> str:
        return f"{self.migration}: {self.operation} {self.target} ({self.why})"


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _kw(call: ast.Call, key: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == key), None)


def _const(node: ast.expr | None) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def _strings(node: ast.expr | None) -> list[str]:
    """The string constants of an SQL argument: a string, a list/tuple of them, of pairs."""
    if node is None:
        return []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.List | ast.Tuple):
        return [s for item in node.elts for s in _strings(item)]
    return []


def _target(call: ast.Call) -> str:
    """model.field (RemoveField, AlterField, …) or model (DeleteModel, RenameModel)."""
    positional = [str(_const(a)) for a in call.args if isinstance(_const(a), str)]
    keyed = [_const(_kw(call, k)) for k in ("model_name", "name", "old_name")]
    parts = [str(v) for v in keyed if isinstance(v, str)] or positional[:2]
    return ".".join(parts) or "?"


def _nullable_or_defaulted(field: ast.expr | None, keys: tuple[str, ...]) -> bool:
    if not isinstance(field, ast.Call):
        return True  # not a literal field(...): nothing to judge
    if _const(_kw(field, "null")) is True:
        return True
    return any(_kw(field, key) is not None for key in keys)


def lint_migration(migration: str, source: str) -> list[Finding]:
    """The dangerous operations of one migration file (its name `app.0007_name`)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [Finding(migration, "SyntaxError", f"line {exc.lineno}", "the migration does not parse")]
    findings: list[Finding] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        op = _name(node.func)
        if op in REMOVING:
            findings.append(Finding(migration, op, _target(node), REMOVING[op]))
        elif op == "AlterField":
            field = _kw(node, "field")
            if isinstance(field, ast.Call) and _kw(field, "db_column") is not None:
                findings.append(Finding(migration, op, _target(node),
                                        "sets db_column: the column may be renamed under the previous release"))
            elif not _nullable_or_defaulted(field, ("default", "db_default")):
                findings.append(Finding(migration, op, _target(node),
                                        "may make a column NOT NULL without a default the previous release fills"))
        elif op == "AddField":
            field = _kw(node, "field")
            many = isinstance(field, ast.Call) and _name(field.func) == "ManyToManyField"
            if not many and not _nullable_or_defaulted(field, ("db_default",)):
                findings.append(Finding(migration, op, _target(node),
                                        "a NOT NULL column without db_default: the previous release's inserts fail"))
        elif op == "RunSQL":
            sql = _strings(node.args[0] if node.args else _kw(node, "sql"))
            for text in sql:
                found = _DANGEROUS_SQL.search(text)
                if found:
                    findings.append(Finding(migration, op, found.group(0).upper(),
                                            "raw SQL that drops or renames what the previous release may read"))
                    break
    return findings


def lint(migrations: dict[str, str], allow: list[str] | tuple[str, ...] = ()) -> tuple[list[Finding], list[Finding]]:
    """(findings, allowed findings) over `migrations` (name -> source)."""
    findings = [f for name in sorted(migrations) for f in lint_migration(name, migrations[name])]
    return [f for f in findings if f.migration not in allow], [f for f in findings if f.migration in allow]
