'use strict';
// A stand-in for the OpenFaaS node22 template's index.js: the same FunctionEvent/FunctionContext
// wiring and the same `require('./function/handler')`, with node:http in place of Express and its
// body parsers (JSON bodies arrive parsed, text bodies as strings, a missing content-type is
// text/plain). It listens on $http_port (0 picks a free one) and prints the port it got.
const http = require('node:http');
const path = require('node:path');

const handler = require(path.join(process.cwd(), 'function', 'handler'));

class FunctionEvent {
  constructor(req, body) {
    this.body = body;
    this.headers = req.headers;
    this.method = req.method;
    const url = new URL(req.url, 'http://localhost');
    this.query = Object.fromEntries(url.searchParams);
    this.path = url.pathname;
  }
}

class FunctionContext {
  constructor(cb) {
    this.statusCode = 200;
    this.cb = cb;
    this.headerValues = {};
    this.cbCalled = 0;
  }
  status(statusCode) {
    if (!statusCode) return this.statusCode;
    this.statusCode = statusCode;
    return this;
  }
  headers(value) {
    if (!value) return this.headerValues;
    this.headerValues = value;
    return this;
  }
  succeed(value) {
    this.cbCalled++;
    this.cb(undefined, value);
  }
  fail(value) {
    if (this.status() == '200') this.status(500);
    this.cbCalled++;
    this.cb(value, undefined);
  }
}

function parseBody(req, raw) {
  const type = req.headers['content-type'] || 'text/plain';
  if (raw.length === 0) return {};
  if (/^application\/json/i.test(type)) return JSON.parse(raw.toString('utf8'));
  if (/^text\//i.test(type)) return raw.toString('utf8');
  return {};
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body;
    try {
      body = parseBody(req, Buffer.concat(chunks));
    } catch (err) {
      res.writeHead(400).end(String(err));
      return;
    }
    const cb = (err, functionResult) => {
      if (err) {
        console.error(err);
        res.writeHead(fnContext.status()).end(err.toString ? err.toString() : String(err));
        return;
      }
      const isStructured = Array.isArray(functionResult) || (functionResult && functionResult.constructor === Object);
      res.writeHead(fnContext.status(), fnContext.headers());
      res.end(isStructured ? JSON.stringify(functionResult) : functionResult);
    };
    const fnEvent = new FunctionEvent(req, body);
    const fnContext = new FunctionContext(cb);
    Promise.resolve(handler(fnEvent, fnContext, cb))
      .then((result) => {
        if (!fnContext.cbCalled) fnContext.succeed(result);
      })
      .catch((e) => cb(e));
  });
});

server.listen(Number(process.env.http_port || 3000), '127.0.0.1', () => {
  console.log(`template listening on port: ${server.address().port}`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
