import React, { useState } from 'react';
import { DataSourceSettings } from '@grafana/data';
import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';

import { UI_TEST_TIMEOUT_MS } from '../__fixtures__/ui';
import { ConfigEditor, normalizeServiceUrl, validateServiceUrl } from './ConfigEditor';
import { RuleperfOptions, RuleperfSecureOptions } from '../types';

jest.setTimeout(UI_TEST_TIMEOUT_MS);

type Settings = DataSourceSettings<RuleperfOptions, RuleperfSecureOptions>;

function settings(overrides: Partial<Settings> = {}): Settings {
  return {
    id: 1,
    uid: 'ruleperf',
    orgId: 1,
    name: 'ruleperf',
    type: 'seed-ruleperf-datasource',
    typeName: 'ruleperf',
    typeLogoUrl: '',
    access: 'proxy',
    url: '',
    user: '',
    basicAuth: false,
    basicAuthUser: '',
    isDefault: false,
    withCredentials: false,
    readOnly: false,
    jsonData: {},
    secureJsonFields: {},
    ...overrides,
  } as Settings;
}

/** Renders the editor the way Grafana does: every change is fed back as the new options. */
function renderEditor(initial: Settings) {
  const changes: Settings[] = [];
  function Host() {
    const [options, setOptions] = useState(initial);
    return (
      <ConfigEditor
        options={options}
        onOptionsChange={(next) => {
          changes.push(next);
          setOptions(next);
        }}
      />
    );
  }
  render(<Host />);
  return { changes, last: () => changes[changes.length - 1] };
}

describe('ConfigEditor', () => {
  it('renders labelled fields for the service URL, the API token and the optional admin token', () => {
    renderEditor(settings({ jsonData: { serviceUrl: 'http://ruleperf:8080' } }));
    expect(screen.getByLabelText(/Service URL/)).toHaveValue('http://ruleperf:8080');
    expect(screen.getByLabelText(/^API token/)).toHaveAttribute('type', 'password');
    const admin = screen.getByLabelText(/Admin token \(optional\)/);
    expect(admin).toHaveAttribute('type', 'password');
    // Never required: only the service URL is.
    expect(admin).not.toBeRequired();
    expect(screen.getByText(/Only needed if Grafana admins should flush the service's cache/)).toBeInTheDocument();
  });

  it('writes the admin token into secureJsonData.adminToken, which only the invalidation route reads', async () => {
    const { last } = renderEditor(settings());
    await userEvent.type(screen.getByLabelText(/Admin token/), 'adm1n');
    expect(last().secureJsonData).toEqual({ adminToken: 'adm1n' });
    expect(last().jsonData).toEqual({});
  });

  it('resets a stored admin token without touching the API token', async () => {
    const { last } = renderEditor(settings({ secureJsonFields: { apiToken: true, adminToken: true } }));
    const resets = screen.getAllByRole('button', { name: 'Reset' });
    expect(resets).toHaveLength(2);
    await userEvent.click(resets[1]);
    expect(last().secureJsonFields).toEqual({ apiToken: true, adminToken: false });
    expect(last().secureJsonData).toEqual({ adminToken: '' });
  });

  it('writes the URL into jsonData.serviceUrl, which plugin.json routes read, and drops a trailing slash on blur', async () => {
    const { last } = renderEditor(settings());
    const url = screen.getByLabelText(/Service URL/);
    await userEvent.type(url, 'http://ruleperf:8080/');
    expect(last().jsonData.serviceUrl).toBe('http://ruleperf:8080/');
    await userEvent.tab();
    expect(last().jsonData.serviceUrl).toBe('http://ruleperf:8080');
    expect(url).toHaveValue('http://ruleperf:8080');
  });

  it('shows an error for a URL Grafana could not proxy to', async () => {
    renderEditor(settings());
    await userEvent.type(screen.getByLabelText(/Service URL/), 'ruleperf:8080');
    await userEvent.tab();
    expect(screen.getByText('The URL must start with http:// or https://')).toBeInTheDocument();
  });

  it('keeps the error hidden while a valid URL is typed', async () => {
    renderEditor(settings());
    await userEvent.type(screen.getByLabelText(/Service URL/), 'https://ruleperf.example.org');
    await userEvent.tab();
    expect(screen.queryByText(/must start with/)).not.toBeInTheDocument();
  });

  it('writes the token into secureJsonData.apiToken', async () => {
    const { last } = renderEditor(settings());
    await userEvent.type(screen.getByLabelText(/^API token/), 's3cret');
    expect(last().secureJsonData?.apiToken).toBe('s3cret');
    expect(last().jsonData).not.toHaveProperty('apiToken');
  });

  it('shows a stored token as configured, and Reset clears it', async () => {
    const { last } = renderEditor(settings({ secureJsonFields: { apiToken: true } }));
    const token = screen.getByLabelText(/^API token/);
    expect(token).toBeDisabled();
    expect(token).toHaveValue('configured');
    await userEvent.click(screen.getAllByRole('button', { name: 'Reset' })[0]);
    expect(last().secureJsonFields.apiToken).toBe(false);
    expect(last().secureJsonData?.apiToken).toBe('');
    expect(screen.getByLabelText(/^API token/)).toBeEnabled();
  });
});

describe('service URL rules', () => {
  it.each([
    ['http://ruleperf:8080', undefined],
    ['https://10.0.0.5/ruleperf', undefined],
    ['', undefined],
    ['ruleperf:8080', 'The URL must start with http:// or https://'],
    ['not a url', 'Enter a full URL such as http://ruleperf:8080'],
    ['http://ruleperf:8080/?x=1', 'Leave out ?query and #fragment: the plugin appends /api/v1/... itself'],
  ])('"%s"', (url, expected) => {
    expect(validateServiceUrl(url)).toBe(expected);
  });

  it('normalizes trailing slashes and spaces', () => {
    expect(normalizeServiceUrl(' http://a:1/base// ')).toBe('http://a:1/base');
  });
});
