"""The package's shape, as issue #22 asks it to stay: no Python file over 500 lines, no import cycle between
the package's modules, and the entry points in scripts/ thin (they import a module and call its main)."""
import ast
import os


HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
ROOT = os.path.dirname(TOOLS)
PACKAGE = os.path.join(TOOLS, "vaeas_tools")


def python_files(*dirs):
    for d in dirs:
        for base, _, files in os.walk(d):
            for f in files:
                if f.endswith(".py"):
                    yield os.path.join(base, f)


def module_name(path):
    rel = os.path.relpath(path, TOOLS)[:-3].replace(os.sep, ".")
    return rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


def imports_of(path):
    """The vaeas_tools modules a file imports (relative imports resolved; `from pkg import mod` counted as mod)."""
    name = module_name(path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("vaeas_tools"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("vaeas_tools"):
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.add(sub if os.path.exists(os.path.join(TOOLS, *sub.split(".")) + ".py")
                        or os.path.isdir(os.path.join(TOOLS, *sub.split("."))) else target)
    out.discard(name)
    return out


def test_no_python_file_over_500_lines():
    long = {os.path.relpath(p, ROOT): n for p in python_files(TOOLS, os.path.join(ROOT, "scripts"))
            if (n := sum(1 for _ in open(p))) > 500}
    assert not long, f"over 500 lines: {long}"


def find_cycle(graph):
    """A list of modules forming an import cycle in {module: imported modules}, or None."""
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == "open":
                return stack[stack.index(d):] + [d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = "done"
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_cycle():
    graph = {module_name(p): imports_of(p) for p in python_files(PACKAGE)}
    # A package's __init__ importing its own submodules is how Python packages work, not a cycle of concerns.
    graph = {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in graph.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_finds_one():
    """Not vacuous: scaling <-> projection, as the flat scripts had it, is found; a chain is not a cycle."""
    assert find_cycle({"s": {"p"}, "p": {"s"}}) == ["p", "s", "p"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert "vaeas_tools.io" in imports_of(os.path.join(PACKAGE, "study", "runner.py"))


def test_entry_points_are_thin():
    for p in python_files(os.path.join(ROOT, "scripts")):
        tree = ast.parse(open(p).read(), p)
        defs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        assert not defs, f"{os.path.relpath(p, ROOT)} defines {defs}: logic belongs in tools/vaeas_tools"
        assert sum(1 for _ in open(p)) <= 25, f"{os.path.relpath(p, ROOT)} is not a thin entry point"
