"""Model registry: `--model X` -> models/X_model.py, class XModel (case and underscores ignored)."""
from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Callable

from util.errors import UserError

_PACKAGE_DIR = Path(__file__).resolve().parent


def _normalise(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def available_models() -> list[str]:
    """Names of the model files present, e.g. ['pix2pix', 'test']."""
    names = (path.name[: -len("_model.py")] for path in _PACKAGE_DIR.glob("*_model.py"))
    return sorted(name for name in names if name != "base")


def find_model_using_name(model_name: str) -> type:
    """The BaseModel subclass behind `--model model_name`; unknown names are a UserError."""
    from models.base_model import BaseModel

    wanted = _normalise(model_name)
    module_name = next((name for name in available_models() if _normalise(name) == wanted), None)
    if module_name is None:
        raise UserError(f"unknown --model {model_name!r} (available: {', '.join(available_models())})")
    module = importlib.import_module(f"models.{module_name}_model")
    for cls_name, cls in inspect.getmembers(module, inspect.isclass):
        if cls_name.lower() == wanted + "model" and issubclass(cls, BaseModel):
            return cls
    raise UserError(f"models/{module_name}_model.py has no subclass of BaseModel named {wanted}Model")


def get_option_setter(model_name: str) -> Callable:
    """The model's `modify_commandline_options(parser, is_train)` (second option pass)."""
    return find_model_using_name(model_name).modify_commandline_options


def create_model(opt):
    """Instantiate the model named by opt.model; call `model.setup(opt)` afterwards to build it."""
    model = find_model_using_name(opt.model)(opt)
    print(f"model [{type(model).__name__}] was created")
    return model
