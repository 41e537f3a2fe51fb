# -*- Python -*-
# lit configuration of the dqt IR tests (modelled on mlir/examples/standalone).

import os
import sys

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "DQT"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py",
                   "unit"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.dqt_obj_root, "test")

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%dqt_src", config.dqt_src_root))
# The PTX of a gpu.binary, unescaped (scripts/extract-ptx.py).
config.substitutions.append(
    ("%extract-ptx",
     "%s %s" % (sys.executable,
                os.path.join(config.dqt_src_root, "scripts", "extract-ptx.py"))))

# mlir-runner's print and memref helpers (test/Integration).
for lib in ["mlir_runner_utils", "mlir_c_runner_utils"]:
    config.substitutions.append(
        ("%" + lib, os.path.join(config.llvm_lib_dir, "lib%s.so" % lib)))

# The NVVM target finds libdevice (which math.floor/math.absf lower to) through
# CUDA_ROOT/CUDA_HOME/CUDA_PATH; without them dqt-opt silently leaves
# `.extern __nv_*` calls in the PTX (see Target/ptx-no-extern.mlir).
llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP",
                                     "CUDA_ROOT", "CUDA_HOME", "CUDA_PATH"])
llvm_config.use_default_substitutions()

# ptxas from the CUDA toolkit assembles generated PTX: no GPU is needed.
if config.has_ptxas:
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", config.ptxas))

llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
tool_dirs = [config.dqt_tools_dir, config.llvm_tools_dir]
tools = ["dqt-opt", "FileCheck", "not", "count", "mlir-translate",
         "mlir-runner"]
llvm_config.add_tool_substitutions(tools, tool_dirs)
