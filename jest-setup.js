// Jest setup provided by Grafana scaffolding
import './.config/jest-setup';
import { configure } from '@testing-library/react';

// findBy*/waitFor give up after 1 s by default; a loaded machine can take longer to render a
// Select's menu. The test timeout (jest.config.js) still bounds every test.
configure({ asyncUtilTimeout: 10_000 });

// react-dom/server (imported by @grafana/ui 13's Text) creates a MessageChannel when
// loaded; jsdom has none. A tiny asynchronous stand-in is enough: nothing here renders
// on the server, and unlike worker_threads' MessageChannel it keeps no handle open.
if (typeof global.MessageChannel === 'undefined') {
  global.MessageChannel = class MessageChannel {
    constructor() {
      this.port1 = { onmessage: null, close() {} };
      this.port2 = {
        postMessage: (data) => setTimeout(() => this.port1.onmessage && this.port1.onmessage({ data }), 0),
        close() {},
      };
    }
  };
}

// @grafana/ui's Select menu watches its options with an IntersectionObserver, which jsdom lacks.
if (typeof global.IntersectionObserver === 'undefined') {
  global.IntersectionObserver = class IntersectionObserver {
    observe() {}
    unobserve() {}
    disconnect() {}
    takeRecords() {
      return [];
    }
  };
}
