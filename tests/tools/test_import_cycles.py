"""The import-cycle check of `make lint` (tools/import_cycles.py) finds cycles, and names one of each."""

from __future__ import annotations

from tools.import_cycles import one_cycle, strongly_connected


def test_a_graph_without_a_cycle_has_no_component() -> None:
    assert strongly_connected({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_each_cycle_is_found_with_every_module_on_it() -> None:
    graph = {
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "d"},  # a -> b -> c -> a
        "d": {"e"},
        "e": {"d"},  # d <-> e, reached from the first cycle
        "f": {"a"},  # imports a cycle, is on none
    }
    assert strongly_connected(graph) == [["d", "e"], ["a", "b", "c"]]


def test_the_cycle_it_names_is_a_real_path_back_to_its_start() -> None:
    graph = {"a": {"b", "x"}, "b": {"c"}, "c": {"a"}, "x": {"y"}, "y": {"a"}}
    cycle = one_cycle(["a", "b", "c", "x", "y"], graph)
    assert cycle[0] == cycle[-1] == "a" and len(cycle) == 4
    assert all(after in graph[before] for before, after in zip(cycle, cycle[1:], strict=False))


def test_a_package_that_imports_its_own_module_is_on_no_cycle() -> None:
    assert strongly_connected({"pkg": {"pkg.mod"}, "pkg.mod": set()}) == []
