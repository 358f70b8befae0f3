"""A custom import-linter contract: no module imports another module's private names.

``from lenscope.analysis import _plan`` couples two modules through a name its owner never
promised to keep; the engine's public API (``lenscope.engine``) exists so that features need
none. A name is private when it starts with one underscore (dunders such as ``__version__``
are public). Imports of a package's own private names from inside that package's own module
are not cross-imports and are allowed.
"""

from __future__ import annotations

import re

import grimp
from importlinter import Contract, ContractCheck, fields, output

IMPORTED_NAMES = re.compile(r"^\s*from\s+[\w.]+\s+import\s+\(?([^)#]*)")


class PrivateNamesContract(Contract):
    type_name = "private_names"

    containers = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        roots = tuple(str(c) for c in self.containers)  # type: ignore[attr-defined]
        found: list[dict[str, str]] = []
        for importer in sorted(m for m in graph.modules if m.startswith(roots)):
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if not imported.startswith(roots) or imported == importer:
                    continue
                for detail in graph.get_import_details(importer=importer, imported=imported):
                    match = IMPORTED_NAMES.match(detail["line_contents"])
                    names = [n.strip().split(" as ")[0] for n in match.group(1).split(",")] if match else []
                    private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                    if private:
                        found.append({"importer": importer, "imported": imported, "names": ", ".join(private),
                                      "line": str(detail["line_number"])})  # fmt: skip
        return ContractCheck(kept=not found, metadata={"found": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for f in check.metadata["found"]:
            output.print_error(f"{f['importer']}:{f['line']} imports {f['names']} (private) from {f['imported']}")
            output.new_line()
