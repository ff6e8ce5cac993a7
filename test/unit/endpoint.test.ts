import { describe, expect, it } from 'vitest';
import { parseBrazeEndpoint } from '../../shared/braze/endpoint';

describe('Braze REST endpoint allowlist', () => {
  it.each([
    ['rest.iad-01.braze.com', 'https://rest.iad-01.braze.com'],
    ['rest.iad-08.braze.com', 'https://rest.iad-08.braze.com'],
    ['rest.us-10.braze.com', 'https://rest.us-10.braze.com'],
    ['rest.fra-01.braze.eu', 'https://rest.fra-01.braze.eu'],
    ['rest.fra-02.braze.eu', 'https://rest.fra-02.braze.eu'],
    ['rest.au-01.braze.com', 'https://rest.au-01.braze.com'],
    ['https://REST.IAD-03.braze.com/', 'https://rest.iad-03.braze.com'],
    ['  rest.iad-03.braze.com  ', 'https://rest.iad-03.braze.com'],
  ])('accepts %s', (input, baseUrl) => {
    expect(parseBrazeEndpoint(input).baseUrl).toBe(baseUrl);
  });

  it.each([
    '169.254.169.254',
    'http://rest.iad-01.braze.com.evil.example',
    'rest.iad-01.braze.com/../x',
    'rest.iad-01.braze.com/users/track',
    'rest.iad-01.braze.com?x=1',
    'https://a:b@rest.iad-01.braze.com',
    'rest.iad-01.braze.com@evil.example',
    'http://rest.iad-01.braze.com',
    'https://rest.iad-01.braze.com:444',
    'rest.braze.com',
    'evil-rest.iad-01.braze.com',
    'rest.iad-01.braze.co',
    'localhost',
    '127.0.0.1:8080',
    '[::1]',
    'ftp://rest.iad-01.braze.com',
    '',
  ])('refuses %j', (input) => {
    expect(() => parseBrazeEndpoint(input)).toThrow();
  });

  it('allows configured local hosts over http, only on the listed port', () => {
    expect(parseBrazeEndpoint('http://127.0.0.1:4010', ['127.0.0.1:4010']).baseUrl).toBe('http://127.0.0.1:4010');
    expect(parseBrazeEndpoint('http://127.0.0.1:5555', ['127.0.0.1:*']).baseUrl).toBe('http://127.0.0.1:5555');
    expect(() => parseBrazeEndpoint('http://127.0.0.1:4011', ['127.0.0.1:4010'])).toThrow();
    expect(() => parseBrazeEndpoint('http://127.0.0.1:4010/x', ['127.0.0.1:4010'])).toThrow();
  });
});
