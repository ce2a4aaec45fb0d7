"""Genotype names as segments of module paths: why a node named `class` still builds.

A step's name (`stage1.0.a.conv`) is the module path of its layer in the compiled network, its
state-dict key, its row in `nasty show` and the key supernets and DARTS find it by. The segments
that come from the genotype (node names, cell names in a chain) may be any identifier the
language accepts, but two kinds cannot name a submodule: a Python keyword (`class`, `lambda`,
`global`, `None`) breaks torch.fx's generated `forward` (`self.stage1.class.conv`), and an
attribute of nn.Module itself (`forward`, `training`, `to`, `_modules`) cannot be registered as a
child. `segment` gives such a name a trailing `_` (more while that is a sibling's own name), and
leaves every other name as it is, so the paths of every genotype that built before stay the same.
"""
from __future__ import annotations

import keyword

# The attributes of a plain torch.nn.Module (dir(nn.Module()) in torch 2.14): a child of one of these
# names cannot be added. A constant, so that elaborating a genotype imports no torch;
# tests/test_compile_names.py checks it against the torch installed.
MODULE_ATTRS = frozenset("""
T_destination __annotations__ __call__ __class__ __delattr__ __dict__ __dir__ __doc__ __eq__ __format__
__ge__ __getattr__ __getattribute__ __getstate__ __gt__ __hash__ __init__ __init_subclass__ __le__ __lt__
__module__ __ne__ __new__ __reduce__ __reduce_ex__ __repr__ __setattr__ __setstate__ __sizeof__ __str__
__subclasshook__ __weakref__ _apply _backward_hooks _backward_pre_hooks _buffers _call_impl
_compiled_call_impl _forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs
_forward_pre_hooks _forward_pre_hooks_with_kwargs _get_backward_hooks _get_backward_pre_hooks _get_name
_is_full_backward_hook _load_from_state_dict _load_state_dict_post_hooks _load_state_dict_pre_hooks
_maybe_warn_non_full_backward_hook _modules _named_members _non_persistent_buffers_set _parameters
_register_load_state_dict_pre_hook _register_state_dict_hook _replicate_for_data_parallel
_save_to_state_dict _slow_forward _state_dict_hooks _state_dict_pre_hooks _version _wrapped_call_impl
add_module apply bfloat16 buffers call_super_init children compile cpu cuda double dump_patches eval
extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half ipu load_state_dict
modules mtia named_buffers named_children named_modules named_parameters parameters register_backward_hook
register_buffer register_forward_hook register_forward_pre_hook register_full_backward_hook
register_full_backward_pre_hook register_load_state_dict_post_hook register_load_state_dict_pre_hook
register_module register_parameter register_state_dict_post_hook register_state_dict_pre_hook requires_grad_
set_extra_state set_submodule share_memory state_dict to to_empty train training type xpu zero_grad
""".split())


def reserved(name: str) -> bool:
    """Whether `name` cannot be a segment of a module path as it is."""
    return keyword.iskeyword(name) or name in MODULE_ATTRS


def segment(name: str, siblings=()) -> str:
    """`name` as a segment of a module path: itself, or for a reserved name that name with `_`
    appended until it is neither reserved nor one of `siblings` (the names beside it)."""
    if not reserved(name):
        return name
    s = name + "_"
    while reserved(s) or s in siblings:
        s += "_"
    return s
