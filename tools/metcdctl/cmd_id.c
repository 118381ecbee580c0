/* tools/metcdctl/cmd_id.c - metcdctl id: the ID service every member
 * serves (idgenpb.IdGen, idgen/idgenpb/idgen.proto).
 *
 *   id next TAG [--count N]          segment IDs of TAG, one per line
 *   id snowflake [--count N]         snowflake IDs of the member's worker
 *   id decode ID                     time, worker id and sequence of an ID
 *   id tags                          the tags and the member's two buffers of each
 *   id create-tag TAG --start N --step N [--description TEXT]
 *   id workers                       registered workers and their stored bounds
 *
 * -w json prints the answers as JSON objects instead. */
#include "tools/metcdctl/ctl.h"

#include "common/mem.h"
#include "idgen/idgenpb/idgen.pb-c.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

#define MAX_NEXT 1000000
#define MAX_SNOWFLAKE 100000

/* "2026-12-03T03:14:31.239Z" */
static void fmt_time(int64_t ms, char *buf, size_t len)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char s[32];
    strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", s, (int)(ms % 1000));
}

static void print_ranges(struct ctl *c, Idgenpb__IdRange **rs, size_t n)
{
    if (c->format == CTL_FORMAT_JSON) {
        fputs("\"ranges\":[", c->out);
        for (size_t i = 0; i < n; i++)
            fprintf(c->out, "%s{\"start\":%" PRIu64 ",\"count\":%" PRIu64 "}", i ? "," : "",
                    rs[i]->start, rs[i]->count);
        fputs("]}\n", c->out);
        return;
    }
    for (size_t i = 0; i < n; i++)
        for (uint64_t k = 0; k < rs[i]->count; k++)
            fprintf(c->out, "%" PRIu64 "\n", rs[i]->start + k);
}

static int parse_count(struct ctl *c, const struct ctl_args *a, uint64_t max, uint64_t *count)
{
    int64_t v = ctl_int(a, "count");
    if (v < 1 || (uint64_t)v > max)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "--count wants an integer in 1..%" PRIu64, max);
    *count = (uint64_t)v;
    return 0;
}

static int cmd_next(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "id next needs a tag: id next TAG [--count N]");
    Idgenpb__NextRequest req = IDGENPB__NEXT_REQUEST__INIT;
    int rc;
    if ((rc = parse_count(c, a, MAX_NEXT, &req.count)) != 0)
        return rc;
    req.tag = (char *)a->pos[0];
    ProtobufCMessage *m;
    rc = ctl_unary(c, "/idgenpb.IdGen/Next", &req.base, &idgenpb__next_response__descriptor, &m);
    if (rc != 0)
        return rc;
    Idgenpb__NextResponse *r = (Idgenpb__NextResponse *)m;
    if (c->format == CTL_FORMAT_JSON) {
        fputs("{\"tag\":", c->out);
        ctl_json_str(c->out, a->pos[0]);
        fprintf(c->out, ",\"member_id\":\"%016" PRIx64 "\",", r->member_id);
    }
    print_ranges(c, r->ranges, r->n_ranges);
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return 0;
}

static int cmd_snowflake(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "id snowflake takes no argument but --count");
    Idgenpb__SnowflakeRequest req = IDGENPB__SNOWFLAKE_REQUEST__INIT;
    int rc;
    if ((rc = parse_count(c, a, MAX_SNOWFLAKE, &req.count)) != 0)
        return rc;
    ProtobufCMessage *m;
    rc = ctl_unary(c, "/idgenpb.IdGen/Snowflake", &req.base,
                   &idgenpb__snowflake_response__descriptor, &m);
    if (rc != 0)
        return rc;
    Idgenpb__SnowflakeResponse *r = (Idgenpb__SnowflakeResponse *)m;
    if (c->format == CTL_FORMAT_JSON)
        fprintf(c->out, "{\"member_id\":\"%016" PRIx64 "\",\"worker_id\":%" PRIu32 ",",
                r->member_id, r->worker_id);
    print_ranges(c, r->ranges, r->n_ranges);
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return 0;
}

static int cmd_decode(struct ctl *c, const struct ctl_args *a)
{
    Idgenpb__DecodeRequest req = IDGENPB__DECODE_REQUEST__INIT;
    if (a->n_pos != 1 || ctl_parse_u64(a->pos[0], 0, UINT64_MAX, &req.id) != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "id decode needs an ID: id decode ID");
    ProtobufCMessage *m;
    int rc =
        ctl_unary(c, "/idgenpb.IdGen/Decode", &req.base, &idgenpb__decode_response__descriptor, &m);
    if (rc != 0)
        return rc;
    Idgenpb__DecodeResponse *r = (Idgenpb__DecodeResponse *)m;
    char when[48];
    fmt_time(r->time_ms, when, sizeof(when));
    if (c->format == CTL_FORMAT_JSON)
        fprintf(c->out,
                "{\"id\":%" PRIu64 ",\"time_ms\":%" PRId64 ",\"time\":\"%s\",\"worker_id\":%" PRIu32
                ",\"sequence\":%" PRIu32 ",\"epoch_ms\":%" PRId64 "}\n",
                req.id, r->time_ms, when, r->worker_id, r->sequence, r->epoch_ms);
    else
        fprintf(c->out, "time: %s (%" PRId64 ")\nworker: %" PRIu32 "\nsequence: %" PRIu32 "\n",
                when, r->time_ms, r->worker_id, r->sequence);
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return 0;
}

static int cmd_create_tag(struct ctl *c, const struct ctl_args *a)
{
    Idgenpb__CreateTagRequest req = IDGENPB__CREATE_TAG_REQUEST__INIT;
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "id create-tag needs a tag: id create-tag TAG --start N --step N");
    int64_t start = ctl_int(a, "start"), step = ctl_int(a, "step");
    if (start < 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "--start wants a non-negative integer");
    if (step < 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "--step wants a positive integer");
    req.start = (uint64_t)start;
    req.tag = (char *)a->pos[0];
    req.step = step;
    req.description = (char *)ctl_str(a, "description");
    ProtobufCMessage *m;
    int rc = ctl_unary(c, "/idgenpb.IdGen/CreateTag", &req.base,
                   &idgenpb__create_tag_response__descriptor, &m);
    if (rc != 0)
        return rc;
    if (c->format == CTL_FORMAT_JSON) {
        fputs("{\"tag\":", c->out);
        ctl_json_str(c->out, req.tag);
        fprintf(c->out, ",\"start\":%" PRIu64 ",\"step\":%" PRId64 "}\n", req.start, req.step);
    } else {
        fprintf(c->out, "tag %s created (first ID %" PRIu64 ", step %" PRId64 ")\n", req.tag,
                req.start, req.step);
    }
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return 0;
}

static void print_segment(struct ctl *c, const Idgenpb__Segment *s)
{
    if (c->format == CTL_FORMAT_JSON)
        fprintf(c->out,
                "{\"start\":%" PRIu64 ",\"end\":%" PRIu64 ",\"pos\":%" PRIu64 ",\"step\":%" PRId64
                ",\"ready\":%s}",
                s->start, s->end, s->pos, s->step, s->ready ? "true" : "false");
    else if (s->end > s->start)
        fprintf(c->out, "[%" PRIu64 ", %" PRIu64 ") at %" PRIu64 "%s", s->start, s->end, s->pos,
                s->ready ? "" : " (used up)");
    else
        fputs("none", c->out);
}

static int cmd_tags(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "id tags takes no argument");
    int rc;
    Idgenpb__ListTagsRequest req = IDGENPB__LIST_TAGS_REQUEST__INIT;
    ProtobufCMessage *m;
    rc = ctl_unary(c, "/idgenpb.IdGen/ListTags", &req.base,
                   &idgenpb__list_tags_response__descriptor, &m);
    if (rc != 0)
        return rc;
    Idgenpb__ListTagsResponse *r = (Idgenpb__ListTagsResponse *)m;
    if (c->format == CTL_FORMAT_JSON)
        fprintf(c->out, "{\"member_id\":\"%016" PRIx64 "\",\"tags\":[", r->member_id);
    for (size_t i = 0; i < r->n_tags; i++) {
        const Idgenpb__Tag *t = r->tags[i];
        const Idgenpb__Segment *cur = t->n_segments > t->current ? t->segments[t->current] : NULL;
        const Idgenpb__Segment *nxt =
            t->n_segments > (t->current ^ 1) ? t->segments[t->current ^ 1] : NULL;
        if (c->format == CTL_FORMAT_JSON) {
            fprintf(c->out, "%s{\"tag\":", i ? "," : "");
            ctl_json_str(c->out, t->tag);
            fputs(",\"description\":", c->out);
            ctl_json_str(c->out, t->description);
            fprintf(c->out,
                    ",\"max_id\":%" PRIu64 ",\"step\":%" PRId64 ",\"update_time_ms\":%" PRId64
                    ",\"loaded\":%s,\"loading\":%s,\"next_step\":%" PRId64 ",\"current\":%" PRIu32
                    ",\"segments\":[",
                    t->max_id, t->step, t->update_time_ms, t->loaded ? "true" : "false",
                    t->loading ? "true" : "false", t->next_step, t->current);
            for (size_t k = 0; k < t->n_segments; k++) {
                fputs(k ? "," : "", c->out);
                print_segment(c, t->segments[k]);
            }
            fputs("]}", c->out);
            continue;
        }
        fprintf(c->out, "%s: max_id %" PRIu64 ", step %" PRId64, t->tag, t->max_id, t->step);
        if (t->loaded) {
            fprintf(c->out, " (this member's %" PRId64 "); current ", t->next_step);
            if (cur)
                print_segment(c, cur);
            fputs("; next ", c->out);
            if (nxt && nxt->ready)
                print_segment(c, nxt);
            else
                fputs(t->loading ? "loading" : "none", c->out);
        } else {
            fputs("; not drawn from on this member", c->out);
        }
        if (t->description[0])
            fprintf(c->out, "; \"%s\"", t->description);
        fputc('\n', c->out);
    }
    if (c->format == CTL_FORMAT_JSON)
        fputs("]}\n", c->out);
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return 0;
}

static int cmd_workers(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "id workers takes no argument");
    int rc;
    Idgenpb__WorkersRequest req = IDGENPB__WORKERS_REQUEST__INIT;
    ProtobufCMessage *m;
    rc = ctl_unary(c, "/idgenpb.IdGen/Workers", &req.base, &idgenpb__workers_response__descriptor,
                   &m);
    if (rc != 0)
        return rc;
    Idgenpb__WorkersResponse *r = (Idgenpb__WorkersResponse *)m;
    if (c->format == CTL_FORMAT_JSON)
        fprintf(c->out,
                "{\"member_id\":\"%016" PRIx64 "\",\"worker_id\":%" PRId32
                ",\"worker_state\":\"%s\",\"workers\":[",
                r->member_id, r->worker_id, r->worker_state);
    else
        fprintf(c->out, "member %016" PRIx64 ": worker %" PRId32 " (%s)\n", r->member_id,
                r->worker_id, r->worker_state);
    for (size_t i = 0; i < r->n_workers; i++) {
        const Idgenpb__Worker *w = r->workers[i];
        char when[48];
        fmt_time(w->last_timestamp_ms, when, sizeof(when));
        if (c->format == CTL_FORMAT_JSON) {
            fprintf(c->out, "%s{\"id\":%" PRIu32 ",\"registered\":%s,\"owner\":", i ? "," : "",
                    w->id, w->registered ? "true" : "false");
            ctl_json_str(c->out, w->owner);
            fputs(",\"info\":", c->out);
            ctl_json_str(c->out, w->info);
            fprintf(c->out,
                    ",\"started_ms\":%" PRId64 ",\"lease\":%" PRId64
                    ",\"last_timestamp_ms\":%" PRId64 "}",
                    w->started_ms, w->lease, w->last_timestamp_ms);
            continue;
        }
        fprintf(c->out, "%04" PRIu32 " %s owner=%s bound=%s", w->id,
                w->registered ? "registered" : "free", w->owner[0] ? w->owner : "-", when);
        if (w->registered)
            fprintf(c->out, " lease=%016" PRIx64 " info=\"%s\"", (uint64_t)w->lease, w->info);
        fputc('\n', c->out);
    }
    if (c->format == CTL_FORMAT_JSON)
        fputs("]}\n", c->out);
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return 0;
}

static const struct ctl_flag count_flag[] = {
    {"count", 0, CTL_FLAG_INT, "1", "how many IDs"},
};
static const struct ctl_flag create_flags[] = {
    {"start", 0, CTL_FLAG_INT, "0", "the tag's first ID"},
    {"step", 0, CTL_FLAG_INT, "1000", "IDs a member takes from the tag at a time"},
    {"description", 0, CTL_FLAG_STRING, "", "what the tag numbers"},
};

static const struct ctl_cmd id_next = {
    .name = "next", .use = "next <tag> [options]",
    .summary = "Segment IDs of a tag (Leaf's segment mode), one per line",
    .flags = count_flag, .n_flags = 1, .run = cmd_next};
static const struct ctl_cmd id_snowflake = {
    .name = "snowflake", .use = "snowflake [options]",
    .summary = "Snowflake IDs from the member's worker, one per line",
    .flags = count_flag, .n_flags = 1, .run = cmd_snowflake};
static const struct ctl_cmd id_decode = {
    .name = "decode", .use = "decode <id>",
    .summary = "The time, worker id and sequence of a snowflake ID", .run = cmd_decode};
static const struct ctl_cmd id_tags = {
    .name = "tags", .use = "tags",
    .summary = "The tags, with both of the member's buffers of each", .run = cmd_tags};
static const struct ctl_cmd id_create_tag = {
    .name = "create-tag", .use = "create-tag <tag> [options]",
    .summary = "Creates a tag whose first ID is --start (fails if it exists)",
    .flags = create_flags, .n_flags = 3, .run = cmd_create_tag};
static const struct ctl_cmd id_workers = {
    .name = "workers", .use = "workers",
    .summary = "The registered snowflake workers and their stored timestamps",
    .run = cmd_workers};

static const struct ctl_cmd *const id_subs[] = {
    &id_create_tag, &id_decode, &id_next, &id_snowflake, &id_tags, &id_workers, NULL,
};

const struct ctl_cmd ctl_cmd_id = {
    .name = "id",
    .use = "id <subcommand>",
    .summary = "ID allocation: snowflake IDs and Leaf segments (metcd's own service)",
    .subs = id_subs,
};
