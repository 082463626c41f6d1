/* The one table from error code to CouchDB's status, error and reason. */
#include "src/common/err.h"
#include "src/common/json.h"

#define STT_STR_(x) #x
#define STT_STR(x) STT_STR_(x)

static const stt_err_info_t table[] = {
    [STT_E_BAD_REQUEST - STT_E_FIRST] = {400, "bad_request", "Bad request"},
    [STT_E_BAD_JSON - STT_E_FIRST] = {400, "bad_request", "invalid UTF-8 JSON"},
    [STT_E_ILLEGAL_DB_NAME -
        STT_E_FIRST] = {400, "illegal_database_name",
                        "Name: Only lowercase characters (a-z), digits (0-9), and any of the "
                        "characters _, $, (, ), +, -, and / are allowed. Must begin with a letter."},
    [STT_E_ILLEGAL_DOCID -
        STT_E_FIRST] = {400, "illegal_docid", "Only reserved document ids may start with underscore."},
    [STT_E_DOC_VALIDATION - STT_E_FIRST] = {400, "doc_validation", "Document validation failed"},
    [STT_E_BAD_REV - STT_E_FIRST] = {400, "bad_request", "Invalid rev format"},
    [STT_E_UNAUTHORIZED - STT_E_FIRST] = {401, "unauthorized", "Name or password is incorrect."},
    [STT_E_FORBIDDEN - STT_E_FIRST] = {403, "forbidden", "You are not allowed to access this db."},
    [STT_E_NOT_FOUND - STT_E_FIRST] = {404, "not_found", "missing"},
    [STT_E_DELETED - STT_E_FIRST] = {404, "not_found", "deleted"},
    [STT_E_DB_NOT_FOUND - STT_E_FIRST] = {404, "not_found", "Database does not exist."},
    [STT_E_NO_DB_FILE - STT_E_FIRST] = {404, "not_found", "no_db_file"},
    [STT_E_METHOD - STT_E_FIRST] = {405, "method_not_allowed", "Only GET,HEAD allowed"},
    [STT_E_NOT_ACCEPTABLE - STT_E_FIRST] = {406, "not_acceptable", "Not acceptable"},
    [STT_E_CONFLICT - STT_E_FIRST] = {409, "conflict", "Document update conflict."},
    [STT_E_FILE_EXISTS -
        STT_E_FIRST] = {412, "file_exists", "The database could not be created, the file already exists."},
    [STT_E_PRECONDITION - STT_E_FIRST] = {412, "precondition_failed", "Precondition failed"},
    [STT_E_MISSING_STUB - STT_E_FIRST] = {412, "missing_stub", "Missing attachment stub"},
    [STT_E_TOO_LARGE - STT_E_FIRST] = {413, "too_large", "the request entity is too large"},
    [STT_E_UNSUPPORTED_MEDIA - STT_E_FIRST] = {415, "bad_content_type", "Content-Type must be application/json"},
    [STT_E_RANGE - STT_E_FIRST] = {416, "requested_range_not_satisfiable", "Requested range not satisfiable"},
    [STT_E_NOT_IMPLEMENTED - STT_E_FIRST] = {417, "not_implemented", "all_or_nothing is not supported"},
    [STT_E_INTERNAL - STT_E_FIRST] = {500, "unknown_error", "internal error"},
    [STT_E_IO - STT_E_FIRST] = {500, "io_error", "storage error"},
    [STT_E_JSON_DEPTH -
        STT_E_FIRST] = {400, "bad_request", "JSON nested too deeply: more than " STT_STR(STT_JSON_MAX_DEPTH) " levels"},
    [STT_E_URL_ENCODING - STT_E_FIRST] = {400, "bad_request", "invalid_url_encoding"},
    /* CouchDB has no answer of its own for a full disk (it crashes the write with a
     * 500); 507 is HTTP's word for it */
    [STT_E_NO_SPACE -
        STT_E_FIRST] = {507, "insufficient_storage", "No space left on device: the document was not stored"},
};

const stt_err_info_t *stt_err_info(int code)
{
    static const stt_err_info_t unknown = {500, "unknown_error", "internal error"};
    if (code >= STT_E_FIRST && code < STT_E_LAST && table[code - STT_E_FIRST].error) return &table[code - STT_E_FIRST];
    return &unknown;
}
