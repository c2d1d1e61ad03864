# torch-python.sh, sourced by the scripts that run PyTorch beside us:
# torch_python IMPORTS prints the first python that can `import IMPORTS`
# (e.g. "torch" or "torch, numpy"): $PYTHON, python3 on PATH, then Debian's
# /usr/bin/python3 (python3-torch installs there; a pyenv or venv python3 on
# PATH does not see it). It prints nothing and fails when none can.
torch_python() {
	local c
	for c in ${PYTHON:-} python3 /usr/bin/python3; do
		if command -v "$c" >/dev/null 2>&1 && "$c" -c "import $1" 2>/dev/null; then
			echo "$c"
			return 0
		fi
	done
	return 1
}
