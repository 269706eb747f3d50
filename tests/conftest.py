import sys
from pathlib import Path

# tests import their shared helpers (kit.py) by name
sys.path.insert(0, str(Path(__file__).parent))
