"""The package surface: one entry point, a sorted __all__, typed."""

from __future__ import annotations

from pathlib import Path

import steme_lake as sl


class TestSurface:
    """The top level only re-exports, in sorted order."""

    def test_all_sorted_and_present(self) -> None:
        assert list(sl.__all__) == sorted(sl.__all__, key=lambda n: (n.startswith("_"), n))
        for name in sl.__all__:
            assert hasattr(sl, name), name

    def test_typed(self) -> None:
        assert (Path(sl.__file__).parent / "py.typed").exists()

    def test_readme_starts_with_the_two_commands(self) -> None:
        readme = (Path(__file__).parents[1] / "README.md").read_text()
        head = readme[: readme.index("\n## ")]
        assert "make demo" in head and "make test" in head

    def test_the_command_line_starts_without_the_heavy_libraries(self) -> None:
        """`import steme_lake` took 1.5 s, so every `steme` call was slow: the package
        and the command's parser import neither pyarrow nor polars until used."""
        import subprocess
        import sys

        code = (
            "import sys, steme_lake, steme_lake.cli; steme_lake.cli.build_parser();"
            "print(sorted(m for m in ('polars', 'pyarrow', 'numpy', 'pandas') if m in sys.modules))"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[]"
        # and they come when the lake is used
        assert sl.Lake.__name__ == "Lake" and callable(sl.open)

    def test_names_that_are_also_subpackages_stay_the_functions(self) -> None:
        """Importing the ``doctor`` subpackage must not make ``sl.doctor`` the module."""
        import importlib

        importlib.import_module("steme_lake.doctor._examine")
        assert callable(sl.doctor) and sl.doctor.__name__ == "doctor"
