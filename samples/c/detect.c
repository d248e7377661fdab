/* Lists every device libgrey sees: name, memory and compute units, through the C API.
 *
 *   cc -std=c11 -Iinclude samples/c/detect.c -Lbuild/default/lib -Wl,-rpath,$PWD/build/default/lib -lgrey
 */
#include <grey.h>

#include <inttypes.h>
#include <stdio.h>

static int fail(const char* what, grey_status status) {
    fprintf(stderr, "detect: %s failed: %s (%s)\n", what, grey_last_error(), grey_status_string(status));
    return 1;
}

int main(void) {
    grey_context* context = NULL;
    grey_status status = grey_context_create(NULL, &context);
    if (status != GREY_OK) return fail("grey_context_create", status);

    uint32_t count = 0;
    status = grey_device_count(context, &count);
    if (status != GREY_OK) {
        grey_context_destroy(context);
        return fail("grey_device_count", status);
    }
    printf("libgrey %s: %" PRIu32 " device(s)\n", grey_version_string(), count);
    for (uint32_t i = 0; i < count; ++i) {
        grey_device_spec spec = {0};
        spec.struct_size = sizeof spec;
        status = grey_device_spec_get(context, i, &spec);
        if (status != GREY_OK) {
            grey_context_destroy(context);
            return fail("grey_device_spec_get", status);
        }
        printf("device %" PRIu32 ": %s, ", i, spec.name.state == GREY_FIELD_OK ? spec.name.value : "-");
        if (spec.memory_total_bytes.state == GREY_FIELD_OK) printf("memory %" PRIu64 " bytes, ", spec.memory_total_bytes.value);
        else printf("memory - bytes, ");
        if (spec.compute_units.state == GREY_FIELD_OK) printf("%" PRIu64 " compute units\n", spec.compute_units.value);
        else printf("- compute units\n");
    }
    grey_context_destroy(context);
    return 0;
}
