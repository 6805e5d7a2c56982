# Sourced by scripts/peers/torch-bench and scripts/train-bench: which PyTorch build runs
# as the peer, and the environment of one of its processes. Not run on its own.
#
#   torch_peer FLAVOUR      pypi or debian: installs what that build needs and sets
#                           torch_py (the Python to run), torch_impl (the rows'
#                           implementation name) and torch_stem (result file prefix)
#   torch_env THREADS       sets the array torch_env_vars for `env` in one process
#
# pypi: PyTorch from PyPI (scripts/peers/pytorch, build/torch-venv), its own OpenMP pool
# with OMP_NUM_THREADS and the defaults otherwise, as its users run it. debian: Debian's
# python3-torch with OpenBLAS's OpenMP build pinned through LD_LIBRARY_PATH (torch calls
# whatever libblas.so.3 the alternatives point at), and OMP_WAIT_POLICY=passive past one
# thread, as its pool otherwise spins against itself on 2 cores.

torch_peer() {
  torch_flavour="$1"
  case "$torch_flavour" in
    pypi) torch_py="$(scripts/peers/pytorch)" torch_impl=pytorch torch_stem=torch ;;
    debian) scripts/setup python3-torch libopenblas0-openmp
            torch_py=/usr/bin/python3 torch_impl=pytorch_debian torch_stem=torch_debian ;;
    *) echo "--torch takes pypi or debian, not '$torch_flavour'" >&2; return 2 ;;
  esac
}

torch_env() {
  torch_env_vars=(OMP_NUM_THREADS="$1")
  if [ "$torch_flavour" = debian ]; then
    local policy=active
    [ "$1" -gt 1 ] && policy=passive
    torch_env_vars+=(LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OMP_WAIT_POLICY="$policy")
  fi
}
