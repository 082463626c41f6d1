// settee-qs: the query-server protocol, written for settee.
//
// The host (main.cpp) reads one JSON command per line from stdin and hands the
// line to the function this script evaluates to; every reply is written with
// host.print as one JSON line. The commands and replies are CouchDB's documented
// "Query Server Protocol": reset, add_lib, add_fun, map_doc, reduce, rereduce and
// the ddoc family (new, validate_doc_update, filters, views as filters, updates).
// ["log", msg] lines may precede a reply; ["error", id, reason] replaces one and
// keeps the process; ["fatal", id, reason] replaces one and the process exits.
//
// Design functions run in this one global. What they may see is the set of
// helpers CouchDB documents (emit, log, sum, toJSON, isArray, require, ...),
// installed read-only so that one function cannot break the next. Everything
// this dispatcher uses is captured in the closure before any user code runs.
(function (global, host) {
    'use strict';
    const parse = JSON.parse;
    const stringify = JSON.stringify;
    const hasOwn = Object.prototype.hasOwnProperty;
    const isArray = Array.isArray;
    const defineProperty = Object.defineProperty;
    const print = host.print;
    const evaluate = host.evaluate;
    const deepFreeze = host.deepFreeze;
    const gc = host.gc;
    const exit = host.exit;

    // ---------------------------------------------------------------- state

    let config = {};        // the object of the last reset
    let lineLength = 0;     // of the command being run: reduce_limit compares with it
    let mapFuns = [];       // add_fun, in order
    let mapLib = null;      // add_lib: what require() reaches from map functions
    let mapModules = new Map();
    const ddocs = new Map(); // id -> {doc, funs: Map(path -> function), modules: Map}
    const reduceFuns = new Map(); // source -> compiled; bounded
    const REDUCE_CACHE_MAX = 256;

    // emit() collects rows while a map function runs and only raises a flag
    // while a view's map function serves as a _changes filter.
    let emitted = [];
    let filterEmitted = false;
    let filtering = false;

    function respond(value) {
        print(stringify(value));
    }

    // How CouchDB's query server describes a thrown value: toSource when the
    // engine has it (enabled by the host), else its string form.
    function errstr(e) {
        if (e !== null && e !== undefined && typeof e.toSource === 'function') {
            try {
                return e.toSource();
            } catch (_) {
                /* fall through */
            }
        }
        return String(e);
    }

    // Error objects stringify as {}: keep their name and message instead.
    function errorToJSON(e) {
        if (e !== null && typeof e === 'object' && 'stack' in e && 'name' in e && 'message' in e)
            return {error: e.name, message: e.message};
        return e;
    }

    // ---------------------------------------------------------------- helpers for design functions

    function log(message) {
        if (typeof message !== 'string') message = stringify(errorToJSON(message));
        respond(['log', String(message)]);
    }

    function emit(key, value) {
        if (filtering) {
            filterEmitted = true;
            return;
        }
        emitted.push([key, value === undefined ? null : errorToJSON(value)]);
    }

    function sum(values) {
        let total = 0;
        for (const i in values) total += values[i];
        return total;
    }

    function notSupported(name) {
        return function () {
            throw ['error', 'not_supported', name + '() belongs to _show and _list, which settee does not support'];
        };
    }

    const helpers = {
        emit: emit,
        log: log,
        sum: sum,
        toJSON: stringify,
        isArray: isArray,
        getRow: notSupported('getRow'),
        send: notSupported('send'),
        start: notSupported('start'),
        provides: notSupported('provides'),
        registerType: notSupported('registerType'),
    };
    for (const name in helpers)
        defineProperty(global, name, {value: helpers[name], writable: false, configurable: false, enumerable: false});
    deepFreeze(JSON);

    // ---------------------------------------------------------------- compiling

    // A design function is an expression (usually "function (doc) {...}") in a
    // string. It is evaluated inside a factory that binds require() for it, so
    // that functions of different design documents each reach their own modules.
    // Trailing semicolons and whitespace would end the expression early.
    function compileFunction(source, require, name) {
        if (source === undefined || source === null || source === '')
            throw ['error', 'not_found', 'missing function'];
        source = String(source);
        let fun;
        try {
            const body = source.replace(/[\s;]+$/, '');
            const factory = evaluate('(function (require) { return (' + body + '\n); })', name || 'design function');
            fun = factory(require);
        } catch (e) {
            throw ['error', 'compilation_error', errstr(e) + ' (' + source + ')'];
        }
        if (typeof fun !== 'function')
            throw ['error', 'compilation_error', 'Expression does not eval to a function. (' + source + ')'];
        return fun;
    }

    function badPath(reason) {
        return ['error', 'invalid_require_path', reason];
    }

    // CommonJS modules: require(path) walks the design document (or, for map
    // functions, {views: {lib: lib}}) from its root, "./" and "../" from the
    // folder of the requiring module. Each module runs once per cache; a module
    // required while it is still loading sees its exports so far (cycles end).
    function makeRequire(root, cache, folder) {
        return function require(name) {
            if (typeof name !== 'string') throw badPath('Must require a string path');
            const parts = name.split('/');
            const relative = parts[0] === '.' || parts[0] === '..';
            if (relative && folder === null) throw badPath('Object has no parent ' + stringify(root));
            const path = relative ? folder.slice() : [];
            for (const p of parts) {
                if (p === '.' || p === '') continue;
                if (p === '..') {
                    if (path.length === 0) throw badPath('Object has no parent ' + stringify(root));
                    path.pop();
                } else {
                    path.push(p);
                }
            }
            const id = path.join('/');
            const cached = cache.get(id);
            if (cached) return cached.exports;
            let current = root;
            for (const p of path) {
                if (current === null || typeof current !== 'object' || !hasOwn.call(current, p))
                    throw badPath('Object has no property "' + p + '". ' + stringify(current));
                current = current[p];
            }
            if (typeof current !== 'string')
                throw badPath('Must require a JavaScript string, not: ' + typeof current);
            const module = {id: id, exports: {}};
            cache.set(id, module);
            try {
                const factory = evaluate('(function (module, exports, require) {' + current + '\n})', id);
                factory.call(module.exports, module, module.exports, makeRequire(root, cache, path.slice(0, -1)));
            } catch (e) {
                cache.delete(id);
                throw ['error', 'compilation_error', "Module require('" + name + "') raised error " + errstr(e)];
            }
            return module.exports;
        };
    }

    // ---------------------------------------------------------------- views

    // A map or reduce function that throws skips that document (CouchDB logs it);
    // the string "fatal_error" and ["fatal", ...] stop the whole request, and an
    // engine InternalError (too much recursion) takes the process down.
    function viewError(e, doc) {
        if (e === 'fatal_error') throw ['error', 'map_runtime_error', "function raised 'fatal_error'"];
        if (isArray(e) && e[0] === 'fatal') throw e;
        if (e !== null && typeof e === 'object' && e.name === 'InternalError') throw ['fatal', e.name, e.message];
        let message = 'function raised exception ' + errstr(e);
        if (doc) message += ' with doc._id ' + doc._id;
        log(message);
    }

    function mapDoc(doc) {
        // One map function must not change the document the next one sees.
        deepFreeze(doc);
        const out = new Array(mapFuns.length);
        for (let i = 0; i < mapFuns.length; i++) {
            emitted = [];
            try {
                mapFuns[i](doc);
                out[i] = emitted;
            } catch (e) {
                viewError(e, doc);
                out[i] = [];
            }
        }
        emitted = [];
        respond(out);
    }

    function reduceFun(source) {
        let fun = reduceFuns.get(source);
        if (!fun) {
            fun = compileFunction(source, makeRequire({}, new Map(), null), 'reduce');
            if (reduceFuns.size >= REDUCE_CACHE_MAX) reduceFuns.clear();
            reduceFuns.set(source, fun);
        }
        return fun;
    }

    function runReduce(sources, keys, values, rereduce, context) {
        let codeSize = 0;
        const funs = [];
        for (const s of sources) {
            codeSize += String(s).length;
            funs.push(reduceFun(s));
        }
        const out = new Array(funs.length);
        for (let i = 0; i < funs.length; i++) {
            try {
                out[i] = funs[i](keys, values, rereduce);
            } catch (e) {
                viewError(e, null);
                out[i] = null;
            }
        }
        const line = stringify(out);
        // reduce_limit: a reduction must shrink its input (CouchDB's rule and message).
        const limit = config.reduce_limit;
        const threshold = config.reduce_limit_threshold === undefined ? 5000 : config.reduce_limit_threshold;
        const ratio = config.reduce_limit_ratio === undefined ? 2.0 : config.reduce_limit_ratio;
        const inputLength = lineLength - codeSize;
        if (limit && line.length > threshold && line.length * ratio > inputLength) {
            const message = ['Reduce output must shrink more rapidly:', 'input size:', inputLength, 'output size:',
                             line.length, 'context:', context].join(' ');
            if (limit !== 'log') throw ['error', 'reduce_overflow_error', message];
            log('reduce_overflow_error: ' + message);
        }
        print('[true,' + line + ']');
    }

    // ---------------------------------------------------------------- design documents

    function validate(fun, ddoc, args) {
        try {
            fun.apply(ddoc, args);
            respond(1);
        } catch (e) {
            // A real exception (TypeError...) is an error of the function; a
            // thrown value ({forbidden: ...}, {unauthorized: ...}) is its verdict.
            if (e !== null && typeof e === 'object' && e.name && e.stack) throw e;
            respond(e);
        }
    }

    function filter(fun, ddoc, args) {
        const docs = args[0], req = args[1];
        const out = new Array(docs.length);
        for (let i = 0; i < docs.length; i++) out[i] = !!fun.apply(ddoc, [docs[i], req]);
        respond([true, out]);
    }

    function filterView(fun, ddoc, args) {
        const docs = args[0];
        const out = new Array(docs.length);
        filtering = true;
        try {
            for (let i = 0; i < docs.length; i++) {
                filterEmitted = false;
                fun(docs[i]);
                out[i] = filterEmitted;
            }
        } finally {
            filtering = false;
        }
        respond([true, out]);
    }

    function renderError(e) {
        if ((e !== null && typeof e === 'object' && e.error && e.reason) ||
            (isArray(e) && (e[0] === 'error' || e[0] === 'fatal')))
            throw e;
        const message = 'function raised error: ' + errstr(e) + ' \nstacktrace: ' +
                        (e !== null && e !== undefined ? e.stack : undefined);
        log(message);
        throw ['error', 'render_error', message];
    }

    function update(fun, ddoc, args) {
        try {
            if (args[1] && args[1].method === 'GET')
                throw ['error', 'method_not_allowed', 'Update functions do not allow GET'];
            const result = fun.apply(ddoc, args);
            const doc = result[0], resp = result[1];
            if (typeof resp === 'string') {
                respond(['up', doc, {body: resp}]);
            } else if (resp !== null && typeof resp === 'object' && !isArray(resp)) {
                respond(['up', doc, resp]);
            } else {
                throw ['error', 'render_error', 'undefined response from update function'];
            }
        } catch (e) {
            renderError(e);
        }
    }

    function deprecated(kind) {
        return function () {
            throw ['error', 'not_supported', kind + ' functions are deprecated in CouchDB 3 and not supported by settee'];
        };
    }

    const ddocHandlers = {
        validate_doc_update: validate,
        filters: filter,
        views: filterView,
        updates: update,
        shows: deprecated('show'),
        lists: deprecated('list'),
        rewrites: deprecated('rewrite'),
    };

    function ddocCommand(id) {
        if (id === 'new') {
            const newId = arguments[1];
            ddocs.set(newId, {doc: arguments[2], funs: new Map(), modules: new Map()});
            respond(true);
            return;
        }
        const entry = ddocs.get(id);
        if (!entry) throw ['fatal', 'query_protocol_error', 'uncached design doc: ' + id];
        const path = arguments[1], args = arguments[2];
        if (!isArray(path) || path.length === 0) throw ['fatal', 'query_protocol_error', 'bad function path'];
        const kind = path[0];
        if (!hasOwn.call(ddocHandlers, kind)) throw ['fatal', 'unknown_command', "unknown ddoc command '" + kind + "'"];
        const key = path.join('\u0000');
        let fun = entry.funs.get(key);
        if (!fun) {
            let point = entry.doc;
            for (let i = 0; i < path.length; i++) {
                point = point !== null && typeof point === 'object' && hasOwn.call(point, path[i]) ? point[path[i]]
                                                                                                 : undefined;
                if (point === undefined || point === null)
                    throw ['error', 'not_found',
                           'missing ' + kind + ' function ' + path[path.length - 1] + ' on design doc ' + id];
            }
            fun = compileFunction(point, makeRequire(entry.doc, entry.modules, null), path.join('.'));
            entry.funs.set(key, fun);
        }
        ddocHandlers[kind](fun, entry.doc, isArray(args) ? args : []);
    }

    // ---------------------------------------------------------------- the loop body

    const commands = {
        reset: function (cfg) {
            config = cfg !== null && typeof cfg === 'object' ? cfg : {};
            mapFuns = [];
            mapLib = null;
            mapModules = new Map();
            gc();
            respond(true);
        },
        add_lib: function (lib) {
            mapLib = lib;
            mapModules = new Map();
            respond(true);
        },
        add_fun: function (source) {
            mapFuns.push(compileFunction(source, makeRequire({views: {lib: mapLib}}, mapModules, null), 'map'));
            respond(true);
        },
        map_doc: mapDoc,
        reduce: function (sources, kvs, context) {
            const keys = new Array(kvs.length), values = new Array(kvs.length);
            for (let i = 0; i < kvs.length; i++) {
                keys[i] = kvs[i][0];
                values[i] = kvs[i][1];
            }
            runReduce(sources, keys, values, false, context);
        },
        rereduce: function (sources, values, context) {
            runReduce(sources, null, values, true, context);
        },
        ddoc: ddocCommand,
    };

    function fail(e) {
        if (host.outOfMemory()) {
            respond(['fatal', 'os_process_error', 'JavaScript ran out of memory']);
            exit(1);
        }
        if (isArray(e) && (e[0] === 'error' || e[0] === 'fatal') && e.length >= 3) {
            respond([e[0], String(e[1]), e[2]]);
            if (e[0] === 'fatal') exit(1);
        } else if (e !== null && typeof e === 'object' && e.name === 'InternalError') {
            respond(['fatal', 'InternalError', String(e.message)]);
            exit(1);
        } else if (e !== null && typeof e === 'object' && e.error && e.reason) {
            respond(['error', String(e.error), e.reason]);
        } else if (e !== null && typeof e === 'object' && e.name) {
            respond(['error', String(e.name), String(e.message)]);
        } else {
            respond(['error', 'unnamed_error', errstr(e)]);
        }
    }

    return function dispatch(line) {
        let cmd;
        try {
            cmd = parse(line);
        } catch (e) {
            respond(['fatal', 'query_protocol_error', 'command is not JSON']);
            exit(1);
        }
        if (!isArray(cmd) || typeof cmd[0] !== 'string' || !hasOwn.call(commands, cmd[0])) {
            respond(['fatal', 'unknown_command', 'unknown command ' + stringify(isArray(cmd) ? cmd[0] : cmd)]);
            exit(1);
        }
        lineLength = line.length;
        try {
            commands[cmd[0]].apply(null, cmd.slice(1));
        } catch (e) {
            fail(e);
        }
    };
})
