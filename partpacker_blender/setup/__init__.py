"""One-click setup from the add-on's preferences: the backend's Python environment (venv +
pinned requirements with the right PyTorch build) and the model weights, with progress and
cancel. The plain modules (python_finder, torch_build, environment, weights, runner, state) do
not import bpy; operators.py and ui.py are the Blender side."""
