/*
 * types.c — dtypes and shapes with a symbolic batch dimension.
 *
 * A dimension d >= 0 is a constant; d = -k stands for k*N where N is the batch given at run
 * time. Printing writes N, 2N, ...; ir_numel() counts only constant dims (N as 1), which is what
 * constant data (always batch-free) needs; ir_numel_at() resolves N.
 */
#include <string.h>

#include "ir/ir.h"

static const struct { const char *name; size_t size; } dtypes[DT_COUNT] = {
	[DT_F32] = {"f32", 4}, [DT_F16] = {"f16", 2}, [DT_BF16] = {"bf16", 2}, [DT_F64] = {"f64", 8},
	[DT_I64] = {"i64", 8}, [DT_I32] = {"i32", 4}, [DT_BOOL] = {"bool", 1}, [DT_U8] = {"u8", 1},
};

const char *ir_dt_name(DType dt) { return dt < DT_COUNT ? dtypes[dt].name : "?"; }
size_t ir_dt_size(DType dt) { return dtypes[dt].size; }
int ir_dt_is_float(DType dt) { return dt == DT_F32 || dt == DT_F16 || dt == DT_BF16 || dt == DT_F64; }
int ir_dt_is_half(DType dt) { return dt == DT_F16 || dt == DT_BF16; }
DType ir_dt_acc(DType dt) { return ir_dt_is_half(dt) ? DT_F32 : dt; }

int ir_dt_lookup(const char *name)
{
	for (int i = 0; i < DT_COUNT; i++)
		if (strcmp(dtypes[i].name, name) == 0)
			return i;
	return -1;
}

Shape ir_shape(int rank, const int64_t *d)
{
	Shape s = {rank, {0}};
	DLCC_ASSERT(rank >= 0 && rank <= IR_MAX_RANK);
	for (int i = 0; i < rank; i++)
		s.d[i] = d[i];
	return s;
}

Shape ir_shape0(void) { return (Shape){0, {0}}; }

void ir_shape_swap_last2(Shape *s)
{
	DLCC_ASSERT(s->rank >= 2);
	int64_t t = s->d[s->rank - 1];
	s->d[s->rank - 1] = s->d[s->rank - 2];
	s->d[s->rank - 2] = t;
}

int ir_shape_eq(const Shape *a, const Shape *b)
{
	if (a->rank != b->rank)
		return 0;
	for (int i = 0; i < a->rank; i++)
		if (a->d[i] != b->d[i])
			return 0;
	return 1;
}

int64_t ir_dim_at(int64_t d, int64_t batch) { return d >= 0 ? d : -d * batch; }

int64_t ir_numel(const Shape *s)
{
	int64_t n = 1;
	for (int i = 0; i < s->rank; i++)
		n *= s->d[i] >= 0 ? s->d[i] : -s->d[i];
	return n;
}

int64_t ir_numel_at(const Shape *s, int64_t batch)
{
	int64_t n = 1;
	for (int i = 0; i < s->rank; i++)
		n *= ir_dim_at(s->d[i], batch);
	return n;
}

int ir_has_batch(const Shape *s)
{
	for (int i = 0; i < s->rank; i++)
		if (s->d[i] < 0)
			return 1;
	return 0;
}

char *ir_dim_str(int64_t d, char *buf, size_t len)
{
	if (d >= 0)
		snprintf(buf, len, "%lld", (long long)d);
	else if (d == -1)
		snprintf(buf, len, "N");
	else
		snprintf(buf, len, "%lldN", (long long)-d);
	return buf;
}

char *ir_shape_str(const Shape *s, char *buf, size_t len)
{
	size_t o = 0;
	o += snprintf(buf + o, len - o, "[");
	for (int i = 0; i < s->rank && o < len; i++) {
		char d[32];
		o += snprintf(buf + o, len - o, "%s%s", i ? "," : "", ir_dim_str(s->d[i], d, sizeof d));
	}
	if (o < len)
		snprintf(buf + o, len - o, "]");
	return buf;
}
