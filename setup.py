"""Echelon: an open speech-generation toolkit (HierSpeech++, VITS, VALL-E; processors, vocoders, metrics)."""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def requirements(name: str) -> list:
    lines = (ROOT / name).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


setup(
    name="echelon",
    version="0.1.0",
    description=__doc__,
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["models*", "modules*", "processors*", "evaluation*", "serving*", "finetune*", "bins*", "utils*"]),
    package_data={"": ["*.json", "*.json5", "*.md", "*.pth", "*.txt"]},
    include_package_data=True,
    # torch is installed first and pinned by the Makefile (TORCH_SPEC); listed here without a version
    # so that pip never replaces the build a user chose (CPU, CUDA, ROCm).
    install_requires=["torch"] + requirements("requirements.txt"),
    extras_require={
        "dev": requirements("requirements-dev.txt"),
        # optional metrics: STOI (pure Python) and wide-band PESQ (builds a C extension)
        "metrics": ["pystoi>=0.4", "pesq>=0.0.4"],
    },
    entry_points={
        "console_scripts": [
            "echelon-preprocess=bins.preprocess:main",
            "echelon-train=bins.train:main",
            "echelon-infer=bins.infer:main",
            "echelon-evaluate=bins.evaluate:main",
            "echelon-benchmark=bins.benchmark:main",
            "echelon-convert-piper=bins.convert_piper:main",
            "echelon-export=bins.export:main",
            "echelon-serve=bins.serve:main",
            "echelon-models=bins.models:main",
            "echelon-finetune=bins.finetune:main",
        ]
    },
)
