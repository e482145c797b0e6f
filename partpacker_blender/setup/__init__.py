"""One-click setup from the add-on's preferences: the backend's Python environment (venv +
pinned requirements with the right PyTorch build), the model weights and the backend check, each
a run of steps with progress and cancel. The plain modules (machine, python_finder, torch_build,
path_limits, planning, environment, weights, runner, state) do not import bpy; backend_check.py
reads the preferences and operators.py holds the operators. The preferences (../preferences.py)
draw it all."""
