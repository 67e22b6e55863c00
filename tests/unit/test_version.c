/* Version macros, run-time version, handshake, status codes. */
#include "testutil.h"

#include <string.h>

START_TEST(test_version_matches_header) {
    ck_assert_uint_eq(csp_version_number(), CSP_VERSION_NUMBER);
    ck_assert_str_eq(csp_version_string(), CSP_VERSION_STRING);
    ck_assert_uint_eq(csp_abi_version(), CSP_ABI_VERSION);
    char text[32];
    snprintf(text, sizeof text, "%d.%d.%d", CSP_VERSION_MAJOR, CSP_VERSION_MINOR,
             CSP_VERSION_PATCH);
    ck_assert_str_eq(text, CSP_VERSION_STRING);
    ck_assert_int_eq(CSP_VERSION_MAJOR, CSP_ABI_VERSION);
}
END_TEST

START_TEST(test_handshake) {
    ck_assert_int_eq(CSP_CHECK_VERSION(), CSP_OK);
    /* An older header of the same ABI is fine; a newer one is not. */
    ck_assert_int_eq(csp_check_version(CSP_ABI_VERSION, CSP_VERSION_NUMBER - CSP_VERSION_PATCH),
                     CSP_OK);
    ck_assert_int_eq(csp_check_version(CSP_ABI_VERSION, CSP_VERSION_NUMBER + 99), CSP_OK);
    ck_assert_int_eq(csp_check_version(CSP_ABI_VERSION, CSP_VERSION_NUMBER + 100),
                     CSP_E_VERSION);
    ck_assert_int_eq(csp_check_version(CSP_ABI_VERSION + 1, CSP_VERSION_NUMBER), CSP_E_VERSION);
    ck_assert_int_eq(csp_check_version(CSP_ABI_VERSION, CSP_VERSION_NUMBER + 10000),
                     CSP_E_VERSION);
}
END_TEST

START_TEST(test_status_strings) {
    /* Every code in the fixed range has a distinct name and a text. */
    const char *names[64] = {0};
    int n = 0;
    for (csp_status s = CSP_E_BUFFER; s <= CSP_NO_TENSORS; s++) {
        const char *name = csp_status_name(s);
        ck_assert_ptr_nonnull(name);
        ck_assert_msg(strcmp(name, "CSP_UNKNOWN_STATUS") != 0, "status %d has no name", s);
        if (s < 0)
            ck_assert_msg(strncmp(name, "CSP_E_", 6) == 0, "bad error name %s", name);
        else if (s == 0)
            ck_assert_str_eq(name, "CSP_OK");
        else /* informational: CSP_ but not CSP_E_ */
            ck_assert_msg(strncmp(name, "CSP_", 4) == 0 && strncmp(name, "CSP_E_", 6) != 0,
                          "bad informational name %s", name);
        ck_assert_ptr_nonnull(csp_status_str(s));
        ck_assert_uint_gt(strlen(csp_status_str(s)), 0);
        for (int i = 0; i < n; i++)
            ck_assert_str_ne(names[i], name);
        names[n++] = name;
    }
    ck_assert_int_eq(CSP_DAMPED, 3);
    ck_assert_int_eq(CSP_NOT_CONVERGED, 4);
    ck_assert_int_eq(CSP_NO_TENSORS, 5);
    /* The numbers are part of the ABI. */
    ck_assert_int_eq(CSP_E_INVALID, -1);
    ck_assert_int_eq(CSP_E_NOMEM, -3);
    ck_assert_int_eq(CSP_E_STRUCT_SIZE, -5);
    ck_assert_int_eq(CSP_E_BUFFER, -19);
    ck_assert_int_eq(CSP_MASKED, 1);
    ck_assert_int_eq(CSP_PRUNED, 2);
    ck_assert_str_eq(csp_status_name(CSP_PRUNED), "CSP_PRUNED");
    ck_assert_str_eq(csp_status_name(CSP_E_NOMEM), "CSP_E_NOMEM");
}
END_TEST

START_TEST(test_unknown_status) {
    ck_assert_str_eq(csp_status_name(-9999), "CSP_UNKNOWN_STATUS");
    ck_assert_str_eq(csp_status_str(-9999), "unknown error");
    ck_assert_str_eq(csp_status_str(9999), "unknown informational status");
    ck_assert_ptr_nonnull(csp_status_str(INT32_MIN));
    ck_assert_ptr_nonnull(csp_status_name(INT32_MAX));
}
END_TEST

static Suite *version_suite(void) {
    Suite *s = suite_create("version");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_version_matches_header);
    tcase_add_test(tc, test_handshake);
    tcase_add_test(tc, test_status_strings);
    tcase_add_test(tc, test_unknown_status);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(version_suite()); }
