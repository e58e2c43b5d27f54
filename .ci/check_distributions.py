"""Checks the wheel and the sdist that .ci/run's wheel stage built into DIST_DIR, against the
checkout it runs in (``python .ci/check_distributions.py DIST_DIR``).

The wheel: its tags (abi3 for CPython >= 3.10, manylinux2014 = manylinux_2_17 for this machine's
architecture), the glibc symbol versions its compiled core asks for (none newer than 2.17, which
is what the manylinux2014 tag promises), its contents (every module of python/mixedmodels, the
stubs, py.typed, the shipped datasets, the compiled core, its metadata; no build output, tests
or sources of the Rust crates) and its size. The sdist: the Rust sources, Cargo.lock, the Python
package with its datasets, README.md and pyproject.toml, and nothing built.
"""

from __future__ import annotations

import platform
import re
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

# The wheel is 2.5 MB (its core, stripped, is 6 MB before compression): a bound well above that
# still catches a core built with debug information or a stray build directory.
MAX_WHEEL_BYTES = 10_000_000
MAX_SDIST_BYTES = 5_000_000
# manylinux2014 is CentOS 7's glibc 2.17 (PEP 599).
MAX_GLIBC = (2, 17)
CORE = "mixedmodels/_core.abi3.so"

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "python" / "mixedmodels"


def fail(message: str) -> None:
    sys.exit(f"check_distributions: {message}")


def package_files() -> set[str]:
    """The checkout's package files a wheel must ship, relative to python/."""
    shipped = [path for path in PACKAGE.rglob("*") if path.is_file() and (path.suffix in {".py", ".pyi", ".typed"} or "data" in path.parent.parts)]
    return {path.relative_to(PACKAGE.parent).as_posix() for path in shipped if "__pycache__" not in path.parts}


def only_file(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern))
    if len(found) != 1:
        fail(f"expected one {pattern} in {directory}, found {[path.name for path in found]}")
    return found[0]


def check_wheel_tags(wheel: Path, names: list[str], archive: zipfile.ZipFile) -> None:
    # PEP 427 file name: {name}-{version}-{python tag}-{abi tag}-{platform tag}.whl
    _, _, python_tag, abi_tag, platform_tags = wheel.stem.split("-")
    machine = platform.machine()
    expected_platforms = {f"manylinux2014_{machine}", f"manylinux_2_17_{machine}"}
    if (python_tag, abi_tag) != ("cp310", "abi3") or set(platform_tags.split(".")) != expected_platforms:
        fail(f"{wheel.name}: expected cp310-abi3-{'.'.join(sorted(expected_platforms))}")
    wheel_file = next(name for name in names if name.endswith(".dist-info/WHEEL"))
    tags = {line.split(":", 1)[1].strip() for line in archive.read(wheel_file).decode().splitlines() if line.startswith("Tag:")}
    if tags != {f"cp310-abi3-{platform}" for platform in expected_platforms}:
        fail(f"{wheel_file} gives tags {sorted(tags)}")
    # Symbol versions are strings of the core's dynamic string table.
    versions = {tuple(int(part) for part in found.split(b".")) for found in re.findall(rb"GLIBC_(\d+\.\d+(?:\.\d+)?)", archive.read(CORE))}
    newest = max(versions)
    if newest[:2] > MAX_GLIBC:
        fail(f"{CORE} needs glibc {'.'.join(map(str, newest))}, newer than manylinux2014's {'.'.join(map(str, MAX_GLIBC))}")
    print(f"wheel tags: {python_tag}-{abi_tag}-{platform_tags}; its core needs glibc >= {'.'.join(map(str, newest))}")


def check_wheel(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        check_wheel_tags(wheel, names, archive)
        unpacked = sum(info.file_size for info in archive.infolist())
    dist_info = {name for name in names if PurePosixPath(name).parts[0].endswith(".dist-info")}
    package = set(names) - dist_info
    missing = package_files() - package
    if missing:
        fail(f"the wheel lacks {sorted(missing)}")
    unexpected = sorted(package - package_files() - {CORE})
    if unexpected:
        fail(f"the wheel ships files that are not the package's: {unexpected}")
    datasets = sorted(name for name in package if "/datasets/data/" in name)
    size = wheel.stat().st_size
    print(f"wheel: {wheel.name}, {size / 1e6:.2f} MB ({unpacked / 1e6:.2f} MB unpacked), {len(package)} package files, {len(datasets)} dataset files")
    if size > MAX_WHEEL_BYTES:
        fail(f"the wheel is {size / 1e6:.1f} MB, above the {MAX_WHEEL_BYTES / 1e6:.0f} MB bound")


def check_sdist(sdist: Path) -> None:
    with tarfile.open(sdist) as archive:
        members = {PurePosixPath(name).relative_to(PurePosixPath(name).parts[0]).as_posix() for name in archive.getnames() if "/" in name}
    rust_sources = {path.relative_to(ROOT).as_posix() for path in (ROOT / "rust").rglob("*") if path.suffix == ".rs" or path.name == "Cargo.toml"}
    needed = {"Cargo.toml", "Cargo.lock", "pyproject.toml", "README.md", "PKG-INFO"} | rust_sources | {f"python/{name}" for name in package_files()}
    missing = needed - members
    if missing:
        fail(f"the sdist lacks {sorted(missing)}")
    built = sorted(name for name in members if name.startswith(("target/", "tests/", "dist/")) or name.endswith((".so", ".pyd", ".pyc", ".whl")))
    if built:
        fail(f"the sdist ships build outputs or the Python tests: {built}")
    size = sdist.stat().st_size
    print(f"sdist: {sdist.name}, {size / 1e6:.2f} MB, {len(members)} files ({len(rust_sources)} Rust sources and manifests, Cargo.lock)")
    if size > MAX_SDIST_BYTES:
        fail(f"the sdist is {size / 1e6:.1f} MB, above the {MAX_SDIST_BYTES / 1e6:.0f} MB bound")


def main() -> None:
    if len(sys.argv) != 2:
        fail("usage: check_distributions.py DIST_DIR")
    dist = Path(sys.argv[1])
    check_wheel(only_file(dist, "*.whl"))
    check_sdist(only_file(dist, "*.tar.gz"))


if __name__ == "__main__":
    main()
