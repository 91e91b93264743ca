/*
 * train_digits.c — an application that trains and evaluates a dlcc artifact by itself, through
 * the public header include/dlcc/dlcc.h: no dlcc binary, no Python.
 *
 *   dlcc samples/mlp/mlp.onnx -o mlp.so --optimizer adam --lr 0.002 --batch 64
 *   cc -I include samples/c_api/train_digits.c ./mlp.so -Wl,-rpath,'$ORIGIN' -o train_digits
 *   ./train_digits samples/data     # reads digits_{train,test}_{x,y}.npy
 *
 * The .npy reader below is deliberately minimal (little-endian float32 / int64, C order, header
 * version 1) to keep the sample self-contained.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlcc/dlcc.h"

static void *load_npy(const char *dir, const char *file, size_t elem, long *count)
{
	char path[1024], magic[10];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	FILE *f = fopen(path, "rb");
	if (!f || fread(magic, 1, 10, f) != 10 || memcmp(magic, "\x93NUMPY\x01", 7)) {
		fprintf(stderr, "%s: cannot read a version-1 .npy file\n", path);
		exit(2);
	}
	unsigned hlen = (unsigned char)magic[8] | (unsigned char)magic[9] << 8;
	fseek(f, 10 + hlen, SEEK_SET);
	long start = ftell(f);
	fseek(f, 0, SEEK_END);
	*count = (ftell(f) - start) / (long)elem;
	fseek(f, start, SEEK_SET);
	void *data = malloc(*count * elem);
	if (fread(data, elem, *count, f) != (size_t)*count) {
		fprintf(stderr, "%s: short read\n", path);
		exit(2);
	}
	fclose(f);
	return data;
}

static double accuracy(dlcc_model *m, const float *x, const long long *y, long n, int features)
{
	int b = dlcc_max_batch(m), classes = (int)dlcc_output(m, 0)->dims[1], hits = 0;
	float *out = malloc(sizeof(float) * b * classes);
	for (long s = 0; s < n; s += b) {
		int bs = n - s < b ? (int)(n - s) : b;
		const void *in[1] = {x + s * features};
		void *outs[1] = {out};
		if (dlcc_infer(m, bs, in, outs) < 0) {
			fprintf(stderr, "infer: %s\n", dlcc_error(m));
			exit(1);
		}
		for (int i = 0; i < bs; i++) {
			int best = 0;
			for (int c = 1; c < classes; c++)
				if (out[i * classes + c] > out[i * classes + best])
					best = c;
			hits += best == y[s + i];
		}
	}
	free(out);
	return 100.0 * hits / n;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "samples/data";
	char err[256];
	dlcc_model *m = dlcc_create(DLCC_DEVICE_AUTO, err, sizeof err);
	if (!m) {
		fprintf(stderr, "dlcc_create: %s\n", err);
		return 1;
	}
	long nx, ny, tx, ty;
	int features = (int)dlcc_input(m, 0)->dims[1];
	float *x = load_npy(dir, "digits_train_x.npy", 4, &nx);
	long long *y = load_npy(dir, "digits_train_y.npy", 8, &ny);
	float *xt = load_npy(dir, "digits_test_x.npy", 4, &tx);
	long long *yt = load_npy(dir, "digits_test_y.npy", 8, &ty);
	int b = dlcc_max_batch(m);
	printf("training on %s, %ld samples, batch %d\n", dlcc_device_name(m), ny, b);
	for (int epoch = 1; epoch <= 8; epoch++) {
		double sum = 0;
		int steps = 0;
		for (long s = 0; s + b <= ny; s += b, steps++) {
			const void *in[1] = {x + s * features};
			float loss;
			if (dlcc_train_step(m, b, in, y + s, &loss) < 0) {
				fprintf(stderr, "train: %s\n", dlcc_error(m));
				return 1;
			}
			sum += loss;
		}
		printf("epoch %d: mean loss %.4f\n", epoch, sum / steps);
	}
	printf("held-out accuracy: %.2f%%\n", accuracy(m, xt, yt, ty, features));
	dlcc_destroy(m);
	free(x); free(y); free(xt); free(yt);
	return 0;
}
