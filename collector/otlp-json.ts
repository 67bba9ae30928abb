/**
 * OTLP/JSON ExportTraceServiceRequest → the decoded model.
 *
 * OTLP/JSON is the protobuf JSON mapping with OTLP's own deviations: trace
 * and span ids are hex strings (not base64), enums are integers, int64 values
 * (times, `intValue`) may be strings or numbers, field names lowerCamelCase.
 * Receivers must also accept the original snake_case names, and we take enum
 * names (`SPAN_KIND_PRODUCER`) and base64 ids from non-conforming senders too.
 * Anything of the wrong type is a ValidationError naming the field.
 */
import {
  capString,
  invalidBody,
  OtlpLimits,
  tooManySpans,
  type OtlpAttributes,
  type OtlpEvent,
  type OtlpLink,
  type OtlpResourceSpans,
  type OtlpScopeSpans,
  type OtlpSpan,
  type OtlpValue,
} from './otlp-model.ts';

type Json = Record<string, unknown>;

const SPAN_KIND_NAMES: Record<string, number> = {
  SPAN_KIND_UNSPECIFIED: 0,
  SPAN_KIND_INTERNAL: 1,
  SPAN_KIND_SERVER: 2,
  SPAN_KIND_CLIENT: 3,
  SPAN_KIND_PRODUCER: 4,
  SPAN_KIND_CONSUMER: 5,
};
const STATUS_CODE_NAMES: Record<string, number> = { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 };

const HEX = /^[0-9a-fA-F]*$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const INT = /^-?\d{1,20}$/;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `obj.camelCase ?? obj.snake_case`. */
function field(obj: Json, camel: string, snake?: string): unknown {
  const v = obj[camel];
  return v !== undefined || snake === undefined ? v : obj[snake];
}

function list(obj: Json, path: string, camel: string, snake?: string): unknown[] {
  const v = field(obj, camel, snake);
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalidBody(`${path}.${camel} must be an array`);
  return v;
}

function object(v: unknown, path: string): Json {
  if (!isObject(v)) throw invalidBody(`${path} must be an object`);
  return v;
}

function str(v: unknown, path: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw invalidBody(`${path} must be a string`);
  return capString(v);
}

/** A trace or span id: hex per OTLP/JSON; base64 (the plain protobuf JSON mapping) tolerated. */
function id(v: unknown, path: string, bytes: 16 | 8): string {
  const s = str(v, path);
  if (s === '') return '';
  if (s.length === bytes * 2 && HEX.test(s)) return s.toLowerCase();
  if (s.length === Math.ceil(bytes / 3) * 4 && BASE64.test(s)) {
    const b = Buffer.from(s, 'base64');
    if (b.length === bytes) return b.toString('hex');
  }
  throw invalidBody(`${path} must be ${bytes * 2} hex characters`);
}

/** A uint64 nanosecond time: a decimal string or a number. */
function nanos(v: unknown, path: string): bigint {
  if (v === undefined || v === null) return 0n;
  if (typeof v === 'string' && INT.test(v)) return BigInt.asUintN(64, BigInt(v));
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return BigInt(Math.trunc(v));
  throw invalidBody(`${path} must be unix nanoseconds as a decimal string or number`);
}

function enumValue(v: unknown, path: string, names: Record<string, number>): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === 'string' && Object.hasOwn(names, v)) return names[v];
  throw invalidBody(`${path} must be an enum integer`);
}

function anyValue(v: unknown, path: string, depth: number): OtlpValue {
  if (v === undefined || v === null) return null;
  const o = object(v, path);
  if (o.stringValue !== undefined || o.string_value !== undefined) return str(field(o, 'stringValue', 'string_value'), `${path}.stringValue`);
  const b = field(o, 'boolValue', 'bool_value');
  if (b !== undefined) {
    if (typeof b !== 'boolean') throw invalidBody(`${path}.boolValue must be a boolean`);
    return b;
  }
  const i = field(o, 'intValue', 'int_value');
  if (i !== undefined) {
    if (typeof i === 'number' && Number.isInteger(i)) return i;
    if (typeof i === 'string' && INT.test(i)) {
      const n = BigInt.asIntN(64, BigInt(i));
      return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
    }
    throw invalidBody(`${path}.intValue must be an integer or a decimal string`);
  }
  const d = field(o, 'doubleValue', 'double_value');
  if (d !== undefined) {
    if (typeof d === 'number') return d;
    // The protobuf JSON mapping writes NaN and the infinities as strings.
    if (d === 'NaN' || d === 'Infinity' || d === '-Infinity') return Number(d);
    throw invalidBody(`${path}.doubleValue must be a number`);
  }
  const arr = field(o, 'arrayValue', 'array_value');
  if (arr !== undefined) {
    if (depth >= OtlpLimits.MAX_VALUE_DEPTH) return null;
    const values = list(object(arr, `${path}.arrayValue`), `${path}.arrayValue`, 'values');
    return values.slice(0, OtlpLimits.MAX_VALUES).map((x, n) => anyValue(x, `${path}.arrayValue.values[${n}]`, depth + 1));
  }
  const kv = field(o, 'kvlistValue', 'kvlist_value');
  if (kv !== undefined) {
    if (depth >= OtlpLimits.MAX_VALUE_DEPTH) return null;
    const values = list(object(kv, `${path}.kvlistValue`), `${path}.kvlistValue`, 'values');
    const out: Record<string, OtlpValue> = Object.create(null);
    values.slice(0, OtlpLimits.MAX_VALUES).forEach((x, n) => {
      const p = `${path}.kvlistValue.values[${n}]`;
      const e = object(x, p);
      out[str(e.key, `${p}.key`)] = anyValue(e.value, `${p}.value`, depth + 1);
    });
    return out;
  }
  const bytes = field(o, 'bytesValue', 'bytes_value');
  if (bytes !== undefined) {
    if (typeof bytes !== 'string' || !BASE64.test(bytes)) throw invalidBody(`${path}.bytesValue must be base64`);
    return capString(Buffer.from(bytes, 'base64').toString('hex'));
  }
  return null;
}

function attributes(raw: unknown[], path: string): OtlpAttributes {
  const attrs: OtlpAttributes = new Map();
  for (let n = 0; n < raw.length && attrs.size < OtlpLimits.MAX_ATTRIBUTES; n++) {
    const p = `${path}[${n}]`;
    const kv = object(raw[n], p);
    attrs.set(str(kv.key, `${p}.key`), anyValue(kv.value, `${p}.value`, 0));
  }
  return attrs;
}

function span(raw: unknown, path: string): OtlpSpan {
  const o = object(raw, path);
  const events: OtlpEvent[] = list(o, path, 'events')
    .slice(0, OtlpLimits.MAX_EVENTS)
    .map((e, n) => {
      const p = `${path}.events[${n}]`;
      const eo = object(e, p);
      return {
        timeUnixNano: nanos(field(eo, 'timeUnixNano', 'time_unix_nano'), `${p}.timeUnixNano`),
        name: str(eo.name, `${p}.name`),
        attributes: attributes(list(eo, p, 'attributes'), `${p}.attributes`),
      };
    });
  const links: OtlpLink[] = list(o, path, 'links')
    .slice(0, OtlpLimits.MAX_LINKS)
    .map((l, n) => {
      const p = `${path}.links[${n}]`;
      const lo = object(l, p);
      return {
        traceId: id(field(lo, 'traceId', 'trace_id'), `${p}.traceId`, 16),
        spanId: id(field(lo, 'spanId', 'span_id'), `${p}.spanId`, 8),
        attributes: attributes(list(lo, p, 'attributes'), `${p}.attributes`),
      };
    });
  const st = field(o, 'status');
  const so = st === undefined || st === null ? {} : object(st, `${path}.status`);
  return {
    traceId: id(field(o, 'traceId', 'trace_id'), `${path}.traceId`, 16),
    spanId: id(field(o, 'spanId', 'span_id'), `${path}.spanId`, 8),
    parentSpanId: id(field(o, 'parentSpanId', 'parent_span_id'), `${path}.parentSpanId`, 8),
    name: str(o.name, `${path}.name`),
    kind: enumValue(o.kind, `${path}.kind`, SPAN_KIND_NAMES),
    startTimeUnixNano: nanos(field(o, 'startTimeUnixNano', 'start_time_unix_nano'), `${path}.startTimeUnixNano`),
    endTimeUnixNano: nanos(field(o, 'endTimeUnixNano', 'end_time_unix_nano'), `${path}.endTimeUnixNano`),
    attributes: attributes(list(o, path, 'attributes'), `${path}.attributes`),
    events,
    links,
    status: {
      code: enumValue(so.code, `${path}.status.code`, STATUS_CODE_NAMES),
      message: str(so.message, `${path}.status.message`),
    },
  };
}

/**
 * Decode an OTLP/JSON `ExportTraceServiceRequest`.
 * @throws ValidationError 400 `HOPTRACE_ERR_INVALID_BODY` on bad JSON or a field of the wrong type
 */
export function decodeOtlpJson(body: Uint8Array): OtlpResourceSpans[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch (cause) {
    throw invalidBody(`not JSON (${(cause as Error).message})`, cause);
  }
  const root = object(parsed, 'body');
  let spans = 0;
  return list(root, 'body', 'resourceSpans', 'resource_spans').map((rsRaw, i): OtlpResourceSpans => {
    const path = `resourceSpans[${i}]`;
    const rs = object(rsRaw, path);
    const res = field(rs, 'resource');
    const resource = res === undefined || res === null ? new Map() : attributes(list(object(res, `${path}.resource`), `${path}.resource`, 'attributes'), `${path}.resource.attributes`);
    const scopes = [
      ...list(rs, path, 'scopeSpans', 'scope_spans'),
      ...list(rs, path, 'instrumentationLibrarySpans', 'instrumentation_library_spans'),
    ];
    const scopeSpans = scopes.map((ssRaw, j): OtlpScopeSpans => {
      const p = `${path}.scopeSpans[${j}]`;
      const ss = object(ssRaw, p);
      const scopeRaw = field(ss, 'scope') ?? field(ss, 'instrumentationLibrary', 'instrumentation_library');
      const scope = scopeRaw === undefined || scopeRaw === null ? {} : object(scopeRaw, `${p}.scope`);
      const rawSpans = list(ss, p, 'spans');
      spans += rawSpans.length;
      if (spans > OtlpLimits.MAX_SPANS) throw tooManySpans();
      return {
        scopeName: str(scope.name, `${p}.scope.name`),
        scopeVersion: str(scope.version, `${p}.scope.version`),
        spans: rawSpans.map((s, k) => span(s, `${p}.spans[${k}]`)),
      };
    });
    return { resource, scopeSpans };
  });
}
