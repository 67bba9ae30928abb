/**
 * A small protobuf wire-format reader for the OTLP trace messages hoptrace
 * reads (ExportTraceServiceRequest → ResourceSpans → ScopeSpans → Span with
 * attributes, events, links and status; AnyValue including arrays and
 * kvlists). Written here rather than pulling in protobufjs: about two hundred
 * lines, no code generation, no dependency, and every read is bounds-checked,
 * so junk input is a ValidationError and never a crash or a runaway loop.
 *
 * Field numbers: opentelemetry-proto `trace/v1/trace.proto`,
 * `common/v1/common.proto`, `resource/v1/resource.proto`,
 * `collector/trace/v1/trace_service.proto` (the same ones
 * `@opentelemetry/otlp-transformer`'s serializer writes).
 * Unknown fields are skipped, as protobuf requires.
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

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

const utf8 = new TextDecoder('utf-8');

/** A cursor over one message's bytes. Every read checks the bounds. */
class Reader {
  private readonly buf: Uint8Array;
  private readonly view: DataView;
  pos: number;
  private readonly end: number;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
    this.end = end;
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw invalidBody('truncated varint');
      const byte = this.buf[this.pos++];
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return BigInt.asUintN(64, result);
      shift += 7n;
    }
    throw invalidBody('varint longer than 10 bytes');
  }

  /** A varint that must fit a non-negative safe integer (tags, lengths, enums). */
  uint(): number {
    // Fast path for the one-byte case, which is almost every tag and length.
    if (this.pos < this.end && this.buf[this.pos] < 0x80) return this.buf[this.pos++];
    const v = this.varint();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidBody('varint out of range');
    return Number(v);
  }

  fixed64(): bigint {
    if (this.end - this.pos < 8) throw invalidBody('truncated fixed64');
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  double(): number {
    if (this.end - this.pos < 8) throw invalidBody('truncated double');
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** The bounds of a length-delimited field; the cursor moves past it. */
  lengthDelimited(): [start: number, end: number] {
    const len = this.uint();
    if (len > this.end - this.pos) throw invalidBody('length-delimited field runs past the end of its message');
    const start = this.pos;
    this.pos += len;
    return [start, this.pos];
  }

  sub(): Reader {
    const [start, end] = this.lengthDelimited();
    return new Reader(this.buf, start, end);
  }

  bytes(): Uint8Array {
    const [start, end] = this.lengthDelimited();
    return this.buf.subarray(start, end);
  }

  string(): string {
    const [start, end] = this.lengthDelimited();
    // Decode at most what survives the cap (4 bytes per character at worst).
    const stop = Math.min(end, start + OtlpLimits.MAX_STRING * 4);
    return capString(utf8.decode(this.buf.subarray(start, stop)));
  }

  /** Read a tag: `[fieldNumber, wireType]`. */
  tag(): [number, number] {
    const t = this.uint();
    const field = Math.floor(t / 8);
    if (field === 0) throw invalidBody('field number 0');
    return [field, t & 7];
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_I64:
        if (this.end - this.pos < 8) throw invalidBody('truncated fixed64');
        this.pos += 8;
        return;
      case WIRE_LEN:
        this.lengthDelimited();
        return;
      case WIRE_I32:
        if (this.end - this.pos < 4) throw invalidBody('truncated fixed32');
        this.pos += 4;
        return;
      default:
        throw invalidBody(`unsupported wire type ${wireType}`);
    }
  }
}

function expect(wireType: number, wanted: number, what: string): void {
  if (wireType !== wanted) throw invalidBody(`${what} has wire type ${wireType}, expected ${wanted}`);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** int64 → a number when exact, else its decimal string. */
function int64(v: bigint): number | string {
  const signed = BigInt.asIntN(64, v);
  return signed >= BigInt(Number.MIN_SAFE_INTEGER) && signed <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(signed) : signed.toString();
}

/** AnyValue: 1 string, 2 bool, 3 int64, 4 double, 5 ArrayValue, 6 KeyValueList, 7 bytes. */
function anyValue(r: Reader, depth: number): OtlpValue {
  let value: OtlpValue = null;
  while (!r.done()) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1:
        expect(wire, WIRE_LEN, 'AnyValue.string_value');
        value = r.string();
        break;
      case 2:
        expect(wire, WIRE_VARINT, 'AnyValue.bool_value');
        value = r.varint() !== 0n;
        break;
      case 3:
        expect(wire, WIRE_VARINT, 'AnyValue.int_value');
        value = int64(r.varint());
        break;
      case 4:
        expect(wire, WIRE_I64, 'AnyValue.double_value');
        value = r.double();
        break;
      case 5: {
        expect(wire, WIRE_LEN, 'AnyValue.array_value');
        const sub = r.sub();
        if (depth >= OtlpLimits.MAX_VALUE_DEPTH) break;
        // ArrayValue: 1 repeated AnyValue values
        const values: OtlpValue[] = [];
        while (!sub.done()) {
          const [f, w] = sub.tag();
          if (f === 1) {
            expect(w, WIRE_LEN, 'ArrayValue.values');
            const item = sub.sub();
            if (values.length < OtlpLimits.MAX_VALUES) values.push(anyValue(item, depth + 1));
          } else sub.skip(w);
        }
        value = values;
        break;
      }
      case 6: {
        expect(wire, WIRE_LEN, 'AnyValue.kvlist_value');
        const sub = r.sub();
        if (depth >= OtlpLimits.MAX_VALUE_DEPTH) break;
        // KeyValueList: 1 repeated KeyValue values
        const obj: Record<string, OtlpValue> = Object.create(null);
        let n = 0;
        while (!sub.done()) {
          const [f, w] = sub.tag();
          if (f === 1) {
            expect(w, WIRE_LEN, 'KeyValueList.values');
            const kv = sub.sub();
            if (n++ < OtlpLimits.MAX_VALUES) {
              const [k, v] = keyValue(kv, depth + 1);
              obj[k] = v;
            }
          } else sub.skip(w);
        }
        value = obj;
        break;
      }
      case 7:
        expect(wire, WIRE_LEN, 'AnyValue.bytes_value');
        value = capString(hex(r.bytes()));
        break;
      default:
        r.skip(wire);
    }
  }
  return value;
}

/** KeyValue: 1 key, 2 value. */
function keyValue(r: Reader, depth: number): [string, OtlpValue] {
  let key = '';
  let value: OtlpValue = null;
  while (!r.done()) {
    const [field, wire] = r.tag();
    if (field === 1) {
      expect(wire, WIRE_LEN, 'KeyValue.key');
      key = r.string();
    } else if (field === 2) {
      expect(wire, WIRE_LEN, 'KeyValue.value');
      value = anyValue(r.sub(), depth);
    } else r.skip(wire);
  }
  return [key, value];
}

function addAttribute(attrs: OtlpAttributes, r: Reader, wire: number, what: string): void {
  expect(wire, WIRE_LEN, what);
  const kv = r.sub();
  if (attrs.size >= OtlpLimits.MAX_ATTRIBUTES) return;
  const [k, v] = keyValue(kv, 0);
  attrs.set(k, v);
}

/** Resource: 1 repeated KeyValue attributes. */
function resource(r: Reader): OtlpAttributes {
  const attrs: OtlpAttributes = new Map();
  while (!r.done()) {
    const [field, wire] = r.tag();
    if (field === 1) addAttribute(attrs, r, wire, 'Resource.attributes');
    else r.skip(wire);
  }
  return attrs;
}

/** Span.Event: 1 time_unix_nano fixed64, 2 name, 3 attributes. */
function event(r: Reader): OtlpEvent {
  const e: OtlpEvent = { timeUnixNano: 0n, name: '', attributes: new Map() };
  while (!r.done()) {
    const [field, wire] = r.tag();
    if (field === 1) {
      expect(wire, WIRE_I64, 'Event.time_unix_nano');
      e.timeUnixNano = r.fixed64();
    } else if (field === 2) {
      expect(wire, WIRE_LEN, 'Event.name');
      e.name = r.string();
    } else if (field === 3) addAttribute(e.attributes, r, wire, 'Event.attributes');
    else r.skip(wire);
  }
  return e;
}

/** Span.Link: 1 trace_id, 2 span_id, 4 attributes. */
function link(r: Reader): OtlpLink {
  const l: OtlpLink = { traceId: '', spanId: '', attributes: new Map() };
  while (!r.done()) {
    const [field, wire] = r.tag();
    if (field === 1) {
      expect(wire, WIRE_LEN, 'Link.trace_id');
      l.traceId = hex(r.bytes());
    } else if (field === 2) {
      expect(wire, WIRE_LEN, 'Link.span_id');
      l.spanId = hex(r.bytes());
    } else if (field === 4) addAttribute(l.attributes, r, wire, 'Link.attributes');
    else r.skip(wire);
  }
  return l;
}

/** Status: 2 message, 3 code. */
function status(r: Reader): OtlpSpan['status'] {
  const s = { code: 0, message: '' };
  while (!r.done()) {
    const [field, wire] = r.tag();
    if (field === 2) {
      expect(wire, WIRE_LEN, 'Status.message');
      s.message = r.string();
    } else if (field === 3) {
      expect(wire, WIRE_VARINT, 'Status.code');
      s.code = r.uint();
    } else r.skip(wire);
  }
  return s;
}

/**
 * Span: 1 trace_id, 2 span_id, 4 parent_span_id, 5 name, 6 kind,
 * 7 start_time_unix_nano (fixed64), 8 end_time_unix_nano (fixed64),
 * 9 attributes, 11 events, 13 links, 15 status.
 */
function span(r: Reader): OtlpSpan {
  const s: OtlpSpan = {
    traceId: '',
    spanId: '',
    parentSpanId: '',
    name: '',
    kind: 0,
    startTimeUnixNano: 0n,
    endTimeUnixNano: 0n,
    attributes: new Map(),
    events: [],
    links: [],
    status: { code: 0, message: '' },
  };
  while (!r.done()) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1:
        expect(wire, WIRE_LEN, 'Span.trace_id');
        s.traceId = hex(r.bytes());
        break;
      case 2:
        expect(wire, WIRE_LEN, 'Span.span_id');
        s.spanId = hex(r.bytes());
        break;
      case 4:
        expect(wire, WIRE_LEN, 'Span.parent_span_id');
        s.parentSpanId = hex(r.bytes());
        break;
      case 5:
        expect(wire, WIRE_LEN, 'Span.name');
        s.name = r.string();
        break;
      case 6:
        expect(wire, WIRE_VARINT, 'Span.kind');
        s.kind = r.uint();
        break;
      case 7:
        expect(wire, WIRE_I64, 'Span.start_time_unix_nano');
        s.startTimeUnixNano = r.fixed64();
        break;
      case 8:
        expect(wire, WIRE_I64, 'Span.end_time_unix_nano');
        s.endTimeUnixNano = r.fixed64();
        break;
      case 9:
        addAttribute(s.attributes, r, wire, 'Span.attributes');
        break;
      case 11: {
        expect(wire, WIRE_LEN, 'Span.events');
        const sub = r.sub();
        if (s.events.length < OtlpLimits.MAX_EVENTS) s.events.push(event(sub));
        break;
      }
      case 13: {
        expect(wire, WIRE_LEN, 'Span.links');
        const sub = r.sub();
        if (s.links.length < OtlpLimits.MAX_LINKS) s.links.push(link(sub));
        break;
      }
      case 15:
        expect(wire, WIRE_LEN, 'Span.status');
        s.status = status(r.sub());
        break;
      default:
        r.skip(wire);
    }
  }
  return s;
}

interface Budget {
  spans: number;
}

/** ScopeSpans (and the deprecated InstrumentationLibrarySpans): 1 scope, 2 repeated Span. */
function scopeSpans(r: Reader, budget: Budget): OtlpScopeSpans {
  const ss: OtlpScopeSpans = { scopeName: '', scopeVersion: '', spans: [] };
  while (!r.done()) {
    const [field, wire] = r.tag();
    if (field === 1) {
      expect(wire, WIRE_LEN, 'ScopeSpans.scope');
      // InstrumentationScope: 1 name, 2 version
      const scope = r.sub();
      while (!scope.done()) {
        const [f, w] = scope.tag();
        if (f === 1 && w === WIRE_LEN) ss.scopeName = scope.string();
        else if (f === 2 && w === WIRE_LEN) ss.scopeVersion = scope.string();
        else scope.skip(w);
      }
    } else if (field === 2) {
      expect(wire, WIRE_LEN, 'ScopeSpans.spans');
      if (++budget.spans > OtlpLimits.MAX_SPANS) throw tooManySpans();
      ss.spans.push(span(r.sub()));
    } else r.skip(wire);
  }
  return ss;
}

/** ResourceSpans: 1 resource, 2 repeated ScopeSpans (1000: deprecated instrumentation_library_spans). */
function resourceSpans(r: Reader, budget: Budget): OtlpResourceSpans {
  const rs: OtlpResourceSpans = { resource: new Map(), scopeSpans: [] };
  while (!r.done()) {
    const [field, wire] = r.tag();
    if (field === 1) {
      expect(wire, WIRE_LEN, 'ResourceSpans.resource');
      rs.resource = resource(r.sub());
    } else if (field === 2 || field === 1000) {
      expect(wire, WIRE_LEN, 'ResourceSpans.scope_spans');
      rs.scopeSpans.push(scopeSpans(r.sub(), budget));
    } else r.skip(wire);
  }
  return rs;
}

/**
 * Decode a protobuf `ExportTraceServiceRequest` (1: repeated ResourceSpans).
 * @throws ValidationError 400 `HOPTRACE_ERR_INVALID_BODY` on malformed bytes; 413 past {@link OtlpLimits.MAX_SPANS}
 */
export function decodeOtlpProtobuf(body: Uint8Array): OtlpResourceSpans[] {
  const r = new Reader(body);
  const budget: Budget = { spans: 0 };
  const out: OtlpResourceSpans[] = [];
  while (!r.done()) {
    const [field, wire] = r.tag();
    if (field === 1) {
      expect(wire, WIRE_LEN, 'ExportTraceServiceRequest.resource_spans');
      out.push(resourceSpans(r.sub(), budget));
    } else r.skip(wire);
  }
  return out;
}
