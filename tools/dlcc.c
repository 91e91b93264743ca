/*
 * dlcc.c — the command-line driver: dispatch to the subcommands.
 *
 *   dlcc MODEL -o OUT [options]       compile (cmd_compile.c)
 *   dlcc train OUT.so ...             train an artifact (cmd_train.c)
 *   dlcc run OUT.so ...               inference with an artifact (cmd_train.c)
 *   dlcc info MODEL [--batch N]       parameters, FLOPs, memory plan, step-time estimate
 *   dlcc opt FILE.dlir --passes a,b   run passes on textual IR
 *   dlcc check MODEL ...              artifact (CPU emulation) against the reference interpreter
 *   dlcc conform DIR...               ONNX conformance report over test-case directories
 */
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"

static void usage(FILE *f)
{
	fputs("usage: dlcc MODEL.onnx -o OUT.so [--mode train|infer] [--loss cross_entropy|mse|none]\n"
	      "            [--optimizer sgd|momentum|adam|adamw] [--lr X] [--momentum X] [--weight-decay X]\n"
	      "            [--beta1 X] [--beta2 X] [--eps X] [--schedule constant|step|cosine] [--warmup W]\n"
	      "            [--step-size S] [--gamma G] [--schedule-steps T] [--min-lr X]\n"
	      "            [--precision fp32|fp16|bf16|fp64] [--loss-scale S] [--loss-scale-window W] [--batch N]\n"
	      "            [--conv auto|direct|im2col]\n"
	      "            [--emit so|a|cuda|ptx|ir|dot|dl] [--dump-ir after-all|PASS,...] [--no-fuse] [-v]\n"
	      "       dlcc train OUT.so --input NAME=X.npy --label Y.npy --batch B (--steps S | --epochs E)\n"
	      "            [--no-shuffle] [--seed S] [--log FILE.csv] [--save F.safetensors] [--load F.safetensors]\n"
	      "            [--eval-input NAME=X.npy --eval-label Y.npy] [--device cuda|cpu]\n"
	      "       dlcc run OUT.so --input NAME=X.npy ... --output-dir DIR [--load F] [--device cuda|cpu]\n"
	      "       dlcc info MODEL [--batch N] [--optimizer O]\n"
	      "       dlcc opt FILE.dlir --passes a,b\n"
	      "       dlcc check MODEL [--steps S] [--batch B] [compile options]\n"
	      "       dlcc conform DIR... [--report FILE.md] [--jobs N] [--verbose]\n", f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *c = argv[1];
	if (!strcmp(c, "-h") || !strcmp(c, "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(c, "train"))
		return cmd_train(argc - 1, argv + 1);
	if (!strcmp(c, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(c, "info"))
		return cmd_info(argc - 1, argv + 1);
	if (!strcmp(c, "opt"))
		return cmd_opt(argc - 1, argv + 1);
	if (!strcmp(c, "check"))
		return cmd_check(argc - 1, argv + 1);
	if (!strcmp(c, "conform"))
		return cmd_conform(argc - 1, argv + 1);
	return cmd_compile(argc, argv);
}
