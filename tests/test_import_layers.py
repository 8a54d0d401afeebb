"""No import cycles in keras-pose, counting imports inside functions.

Every module of the package is parsed (nothing is imported): `keras_pose/`,
plus `presets/` and `conversion/`, which are installed as
`keras_pose.presets` and `keras_pose.conversion` (pyproject.toml's
`package-dir`). Every `import` / `from ... import` statement counts, at module
level or inside a function or class, so a cycle that only closes at call time
is found too. Imports through `importlib.import_module(name)` are the
sanctioned way for a lower layer to reach a higher one (the task base's
`from_preset` -> `keras_pose.preset_loading`, the loader -> the converters)
and are not edges.

An edge goes to the module a statement names: `from keras_pose.a import b`
names `keras_pose.a.b` when that is a module, else `keras_pose.a` (its
`__init__`). Executing a parent package's `__init__` on the way is not an
edge (it would make every module a cycle with its own package).
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
# folder -> the package it is installed as
PACKAGE_DIRS = {"keras_pose": "keras_pose", "presets": "keras_pose.presets", "conversion": "keras_pose.conversion"}


def _modules():
    """{module name: source path} of every module of the installed package."""
    modules = {}
    for folder, package in PACKAGE_DIRS.items():
        base = ROOT / folder
        for path in sorted(base.rglob("*.py")):
            relative = path.relative_to(base)
            if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
                continue
            # the keras_pose/presets and keras_pose/conversion links of a dev checkout
            if folder == "keras_pose" and relative.parts[0] in ("presets", "conversion"):
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def _is_package(name, modules):
    return modules.get(name) is not None and modules[name].name == "__init__.py"


def _imports(name, path, modules):
    """The keras_pose modules `name` imports (any statement, anywhere in the file)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if _is_package(name, modules) else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = []
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                targets.append(candidate if candidate in modules else source)
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import keras_pose.a.b as c` of a non-module b
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def find_cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def _a_cycle(graph, component):
    """One concrete path a -> ... -> a inside a strongly connected component."""
    members = set(component)
    start = component[0]
    path, seen = [start], {start}
    node = start
    while True:
        nexts = sorted(n for n in graph[node] if n in members)
        if start in nexts and len(path) > 1:
            return path + [start]
        fresh = [n for n in nexts if n not in seen]
        if not fresh:
            return path + [nexts[0]]
        node = fresh[0]
        path.append(node)
        seen.add(node)


def test_the_graph_sees_the_mapped_folders():
    graph = import_graph()
    assert "keras_pose.conversion.vitpose_converter" in graph
    assert "keras_pose.presets.vitpose_presets" in graph
    assert "keras_pose.preset_loading" in graph
    # imports inside functions count
    assert "keras_pose.conversion.checkpoint_io" in graph["keras_pose.conversion.vitpose_converter"]


def test_no_import_cycles():
    graph = import_graph()
    cycles = find_cycles(graph)
    assert not cycles, "import cycles (counting imports inside functions):\n" + "\n".join(
        " -> ".join(_a_cycle(graph, c)) for c in cycles
    )


def test_cycle_finder_finds_a_function_level_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert _a_cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_lower_layers_reach_the_loader_and_converters_by_name_only():
    """Models, presets and the registry never import the loader or a converter."""
    graph = import_graph()
    high = {"keras_pose.preset_loading", "keras_pose.preset_cache"}
    for name, targets in graph.items():
        if name.startswith(("keras_pose.models", "keras_pose.presets", "keras_pose.layers")) or name in (
            "keras_pose.preset_entry",
            "keras_pose.preset_registry",
        ):
            bad = sorted(t for t in targets if t in high or t.startswith("keras_pose.conversion"))
            assert not bad, f"{name} imports {bad}"
    for name in graph:
        if name.startswith("keras_pose.presets"):
            inside = {t for t in graph[name] if t.startswith("keras_pose.preset")}
            assert inside <= {"keras_pose.preset_entry"} | {n for n in graph if n.startswith("keras_pose.presets")}, name
