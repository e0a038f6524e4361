"""`Module`: one parsed file and the facts every rule reads from it."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from .names import NESTED_SCOPES, NOT_ROUTERS, PYDANTIC_BASES, ROUTE_METHODS, UPLOAD_FILE
from .pytest_config import pytest_asyncio_mode


class Module:
    """One parsed file and the facts the rules share: imports, parents, aliases, model classes."""

    def __init__(self, path: str, source: str, config_dir: Path) -> None:
        self.path = path
        self.tree = ast.parse(source, filename=path)
        self.lines = source.splitlines()
        self.config_dir = config_dir
        self.imports: dict[str, str] = {}
        self.parents: dict[ast.AST, ast.AST] = {}
        self.calls: list[ast.Call] = []
        self.functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        self.classes: list[ast.ClassDef] = []
        self.nodes = list(ast.walk(self.tree))
        self._own: dict[ast.AST, list[ast.AST]] = {}
        for node in self.nodes:
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.imports[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        self.imports[top] = top
            elif isinstance(node, ast.ImportFrom):
                base = "." * node.level + (node.module or "")
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = f"{base}.{alias.name}"
            elif isinstance(node, ast.Call):
                self.calls.append(node)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.functions.append(node)
            elif isinstance(node, ast.ClassDef):
                self.classes.append(node)
        self.globals: dict[str, ast.expr] = {}
        for stmt in self.tree.body:
            targets = (
                stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
            )
            value = getattr(stmt, "value", None)
            if isinstance(stmt, ast.Assign | ast.AnnAssign) and value is not None:
                for target in targets:
                    if isinstance(target, ast.Name):
                        self.globals[target.id] = value
            elif type(stmt).__name__ == "TypeAlias":  # `type X = ...` (3.12+)
                self.globals[stmt.name.id] = stmt.value  # type: ignore[attr-defined]
        self.toplevel: dict[str, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef] = {
            f.name: f
            for f in self.tree.body
            if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        }
        self.models: set[str] = set()
        for cls in self.classes:  # definition order: a subclass follows its base
            if any(self.is_model_base(base) for base in cls.bases):
                self.models.add(cls.name)
        self.has_patch_routes = any(self.route_methods(f) & {"patch"} for f in self.functions)

    # --- names -------------------------------------------------------------------------------
    def qualname(self, node: ast.AST | None) -> str | None:
        """`rq.get` with `import requests as rq` -> "requests.get"; None when not imported."""
        if isinstance(node, ast.Name):
            return self.imports.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualname(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def name_of(self, node: ast.expr) -> str:
        """The qualified name when imported, else the name as written (`Depends` in a snippet)."""
        return self.qualname(node) or ast.unparse(node)

    def makes(self, call: ast.Call, names: set[str]) -> bool:
        """A call to one of `names`, directly, or through a module-level function that returns
        one, or a module-level class whose `__init__` makes one."""
        if self.qualname(call.func) in names:
            return True
        maker = self.toplevel.get(call.func.id) if isinstance(call.func, ast.Name) else None
        if isinstance(maker, ast.ClassDef):
            init = next((f for f in maker.body if getattr(f, "name", "") == "__init__"), None)
            return init is not None and any(
                isinstance(n, ast.Call) and self.qualname(n.func) in names
                for n in self.walk_own(init)
            )
        return maker is not None and any(
            isinstance(r, ast.Return)
            and isinstance(r.value, ast.Call)
            and self.qualname(r.value.func) in names
            for r in self.walk_own(maker)
        )

    def calls_to(self, names: set[str]) -> Iterator[ast.Call]:
        return (c for c in self.calls if self.qualname(c.func) in names)

    def is_builtin(self, name: str) -> bool:
        return name not in self.imports and name not in self.globals and name not in self.toplevel

    def is_model_base(self, base: ast.expr) -> bool:
        base = base.value if isinstance(base, ast.Subscript) else base
        return self.qualname(base) in PYDANTIC_BASES or (
            isinstance(base, ast.Name) and base.id in self.models
        )

    def annotation_names(self, ann: ast.AST | None, seen: frozenset[str] = frozenset()) -> set[str]:
        """Qualified (or local) names inside an annotation, through module-level aliases."""
        names: set[str] = set()
        if ann is None:
            return names
        if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
            try:
                ann = ast.parse(ann.value, mode="eval").body
            except SyntaxError:
                return names
        for node in ast.walk(ann):
            if isinstance(node, ast.Attribute) and (q := self.qualname(node)):
                names.add(q)
            elif isinstance(node, ast.Name):
                names.add(self.imports.get(node.id, node.id))
                alias = self.globals.get(node.id)
                if alias is not None and node.id not in seen:
                    names |= self.annotation_names(alias, seen | {node.id})
        return names

    # --- structure ---------------------------------------------------------------------------
    def scope_of(self, node: ast.AST) -> ast.AST:
        """The innermost function or lambda around a node, or the module."""
        parent = self.parents.get(node)
        while parent is not None and not isinstance(
            parent, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
        ):
            parent = self.parents.get(parent)
        return parent if parent is not None else self.tree

    def in_async_def(self, node: ast.AST) -> bool:
        return isinstance(self.scope_of(node), ast.AsyncFunctionDef)

    def at_import_time(self, node: ast.AST) -> bool:
        """True for code that runs on `import` (module or class body, not `if __name__ == ...`)."""
        parent = self.parents.get(node)
        while parent is not None:
            if isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                return False
            if isinstance(parent, ast.If) and "__name__" in ast.unparse(parent.test):
                return False
            parent = self.parents.get(parent)
        return True

    def route_methods(self, func: ast.AST) -> set[str]:
        """HTTP methods of a route handler (`@app.patch(...)`, `@router.api_route(methods=...)`)."""
        methods: set[str] = set()
        for deco in getattr(func, "decorator_list", []):
            if not (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute)):
                continue
            if deco.func.attr not in ROUTE_METHODS:
                continue
            owner = self.name_of(deco.func.value)
            if owner.startswith(NOT_ROUTERS) or not (deco.args or deco.keywords):
                continue
            if deco.func.attr != "api_route":
                methods.add(deco.func.attr)
            for kw in deco.keywords:
                if kw.arg == "methods" and isinstance(kw.value, ast.List | ast.Tuple | ast.Set):
                    methods |= {
                        str(e.value).lower() for e in kw.value.elts if isinstance(e, ast.Constant)
                    }
        return methods

    def decorated_with(self, func: ast.AST, suffixes: tuple[str, ...]) -> bool:
        for deco in getattr(func, "decorator_list", []):
            target = deco.func if isinstance(deco, ast.Call) else deco
            name = self.name_of(target)
            if name.endswith(suffixes):
                return True
        return False

    def is_dependency_param(self, arg: ast.arg, default: ast.expr | None) -> bool:
        found = self.annotation_names(arg.annotation)
        if isinstance(default, ast.Call):
            found.add(self.name_of(default.func))
        return any(n.endswith(("Depends", "Security")) for n in found)

    def params(
        self, func: ast.FunctionDef | ast.AsyncFunctionDef
    ) -> Iterator[tuple[ast.arg, ast.expr | None]]:
        args = func.args
        positional = args.posonlyargs + args.args
        defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        yield from zip(positional, defaults, strict=True)
        yield from zip(args.kwonlyargs, args.kw_defaults, strict=True)

    def upload_params(self, func: ast.AST) -> set[str]:
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            return set()
        return {
            a.arg for a, _ in self.params(func) if self.annotation_names(a.annotation) & UPLOAD_FILE
        }

    def walk_own(self, func: ast.AST) -> list[ast.AST]:
        """Nodes of a function body, not descending into nested functions, lambdas or classes."""
        if func not in self._own:
            body = getattr(func, "body", [])
            own, stack = [], list(body) if isinstance(body, list) else [body]  # a lambda's body
            while stack:
                node = stack.pop()
                own.append(node)
                stack += (c for c in ast.iter_child_nodes(node) if not isinstance(c, NESTED_SCOPES))
            self._own[func] = own
        return self._own[func]

    def is_generator(self, func: ast.AST) -> bool:
        return any(isinstance(n, ast.Yield | ast.YieldFrom) for n in self.walk_own(func))

    def asyncio_mode_auto(self) -> bool:
        return pytest_asyncio_mode(self.config_dir) == "auto"
