/* The smallest useful libgrey program: list the devices, exit non-zero on any error. */
#include <grey.h>

#include <stdio.h>

int main(void) {
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    grey_context* context = NULL;
    uint32_t count = 0;
    uint32_t i;
    if (grey_context_create(&options, &context) != GREY_OK) {
        fprintf(stderr, "grey_context_create: %s\n", grey_last_error());
        return 1;
    }
    if (grey_device_count(context, &count) != GREY_OK) {
        fprintf(stderr, "grey_device_count: %s\n", grey_last_error());
        grey_context_destroy(context);
        return 1;
    }
    for (i = 0; i < count; ++i) {
        grey_device_spec spec;
        spec.struct_size = sizeof spec;
        if (grey_device_spec_get(context, i, &spec) != GREY_OK) {
            fprintf(stderr, "grey_device_spec_get(%u): %s\n", i, grey_last_error());
            grey_context_destroy(context);
            return 1;
        }
        printf("%u %s %s\n", i, spec.backend, spec.name.state == GREY_FIELD_OK ? spec.name.value : "(unknown)");
    }
    grey_context_destroy(context);
    return 0;
}
