export * as x from 'readable-stream';
