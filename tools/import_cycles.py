"""Import cycles among Segue's modules: strongly connected components of the import graph of engine, bridge, gui.

The graph is grimp's (import-linter's): every ``import`` of one of our modules by another, imports inside
functions included; ``if TYPE_CHECKING:`` imports are left out (they never run), unless ``--type-checking``.
Each component of more than one module holds at least one cycle; one of them is printed, module by module.

    .venv/bin/python -m tools.import_cycles                   # `make lint` runs this; exit 1 on a cycle
    .venv/bin/python -m tools.import_cycles --type-checking   # the annotations' imports too (informative)
"""

from __future__ import annotations

import argparse
import sys
from collections import deque

import grimp

PACKAGES = ("engine", "bridge", "gui")

Graph = dict[str, set[str]]


def import_graph(packages: tuple[str, ...] = PACKAGES, type_checking: bool = False) -> Graph:
    """Module -> the modules of ``packages`` it imports directly."""
    graph = grimp.build_graph(*packages, exclude_type_checking_imports=not type_checking, cache_dir=None)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's components of more than one module (sorted): each is a cycle, or several."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
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
            while (top := stack.pop()) != node:
                on_stack.discard(top)
                component.append(top)
            on_stack.discard(node)
            if component:
                found.append(sorted([node, *component]))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * len(graph) + 100))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def one_cycle(component: list[str], graph: Graph) -> list[str]:
    """A shortest cycle through the component's first module: [a, b, ..., a]."""
    start, members = component[0], set(component)
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for other in sorted(graph.get(node, set()) & members):
            if other == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if other not in parent:
                parent[other] = node
                queue.append(other)
    raise ValueError(f"{start} is in no cycle of {component}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--type-checking", action="store_true", help="count `if TYPE_CHECKING:` imports too")
    args = parser.parse_args(argv)
    graph = import_graph(type_checking=args.type_checking)
    components = strongly_connected(graph)
    for component in components:
        print(f"import cycle among {len(component)} modules: {', '.join(component)}")
        print("  for example: " + " -> ".join(one_cycle(component, graph)))
    if components:
        print("move the piece both sides need into a module of its own (see docs/architecture.md)")
        return 1
    print(f"no import cycle among the {len(graph)} modules of {', '.join(PACKAGES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
