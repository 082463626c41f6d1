/* Error codes shared by every layer. Functions return 0 on success, a negated errno
 * for system errors, or one of the STT_E* codes below (a reserved negative range,
 * as LMDB's MDB_* codes). One table maps a code to CouchDB's HTTP status, "error"
 * and default "reason"; only src/http turns it into a reply. */
#ifndef STT_ERR_H
#define STT_ERR_H

enum {
    STT_E_FIRST = -30999,
    STT_E_BAD_REQUEST = STT_E_FIRST, /* 400 bad_request */
    STT_E_BAD_JSON,                  /* 400 bad_request, invalid JSON or UTF-8 */
    STT_E_ILLEGAL_DB_NAME,           /* 400 illegal_database_name */
    STT_E_ILLEGAL_DOCID,             /* 400 illegal_docid */
    STT_E_DOC_VALIDATION,            /* 400 doc_validation */
    STT_E_BAD_REV,                   /* 400 bad_request "Invalid rev format" */
    STT_E_UNAUTHORIZED,              /* 401 unauthorized */
    STT_E_FORBIDDEN,                 /* 403 forbidden */
    STT_E_NOT_FOUND,                 /* 404 not_found "missing" */
    STT_E_DELETED,                   /* 404 not_found "deleted" */
    STT_E_DB_NOT_FOUND,              /* 404 not_found "Database does not exist." */
    STT_E_NO_DB_FILE,                /* 404 not_found "no_db_file" */
    STT_E_METHOD,                    /* 405 method_not_allowed */
    STT_E_NOT_ACCEPTABLE,            /* 406 not_acceptable */
    STT_E_CONFLICT,                  /* 409 conflict */
    STT_E_FILE_EXISTS,               /* 412 file_exists */
    STT_E_PRECONDITION,              /* 412 precondition_failed */
    STT_E_MISSING_STUB,              /* 412 missing_stub */
    STT_E_TOO_LARGE,                 /* 413 too_large */
    STT_E_UNSUPPORTED_MEDIA,         /* 415 bad_content_type */
    STT_E_RANGE,                     /* 416 requested_range_not_satisfiable */
    STT_E_NOT_IMPLEMENTED,           /* 417 not_implemented (all_or_nothing) */
    STT_E_INTERNAL,                  /* 500 unknown_error */
    STT_E_IO,                        /* 500 io_error: the store failed */
    STT_E_JSON_DEPTH,                /* 400 bad_request: JSON nested deeper than STT_JSON_MAX_DEPTH */
    STT_E_URL_ENCODING,              /* 400 bad_request "invalid_url_encoding" */
    STT_E_NO_SPACE,                  /* 507 insufficient_storage: the disk is full */
    STT_E_LAST
};

typedef struct {
    int status;
    const char *error;
    const char *reason;
} stt_err_info_t;

/* Maps any code (STT_E*, negated errno, or unknown) to its reply; never NULL. */
const stt_err_info_t *stt_err_info(int code);

#endif
