import os
import lit.formats

config.name = "dlcc"
config.test_format = lit.formats.ShTest(True)
config.suffixes = [".dlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.dlcc_binary_dir, "tests", "lit-out")
config.excludes = ["Inputs"]
config.substitutions.append(("%dlcc", os.path.join(config.dlcc_binary_dir, "bin", "dlcc")))
config.substitutions.append(("%src", config.dlcc_source_dir))
config.environment["PATH"] = "/usr/lib/llvm-14/bin:" + os.environ.get("PATH", "")
