'use strict';
'require view';
'require poll';
'require dom';
'require netmeter.common as nm';

// Status → Bandwidth (netmeter) → Devices: every LAN device netmeter
// counts, refreshed with poll; a click on a row shows its history and,
// under the conntrack placement, its bytes by protocol class.

// The running day's or billing month's bytes the API carries with each
// device (absent when that history ring is off: shown as a dash).
function periodColumn(period, direction, title) {
	return { key: period + '_' + direction, title: title, numeric: true,
		value: function(d) { return d[period] ? d[period][direction] : -1; },
		text: function(d) { return d[period] ? nm.bytes(d[period][direction]) : '—'; } };
}

var columns = [
	{ key: 'name', title: _('Name'), value: function(d) { return d.hostname || ''; },
	  text: function(d) { return d.hostname || E('em', {}, _('unknown')); } },
	{ key: 'mac', title: _('MAC'), value: function(d) { return d.mac; } },
	{ key: 'ips', title: _('Addresses'), value: function(d) { return (d.ips || []).join(' '); },
	  text: function(d) { return E('span', { 'style': 'word-break:break-all' }, (d.ips || []).join(', ')); } },
	periodColumn('today', 'rx_bytes', _('Today ↓')),
	periodColumn('today', 'tx_bytes', _('Today ↑')),
	periodColumn('month', 'rx_bytes', _('Month ↓')),
	periodColumn('month', 'tx_bytes', _('Month ↑')),
	{ key: 'rx_bytes', title: _('Total ↓'), numeric: true,
	  value: function(d) { return d.rx_bytes; }, text: function(d) { return nm.bytes(d.rx_bytes); } },
	{ key: 'tx_bytes', title: _('Total ↑'), numeric: true,
	  value: function(d) { return d.tx_bytes; }, text: function(d) { return nm.bytes(d.tx_bytes); } },
	{ key: 'rx_rate', title: _('Now ↓'), numeric: true,
	  value: function(d) { return d.rx_rate; }, text: function(d) { return nm.rate(d.rx_rate); } },
	{ key: 'tx_rate', title: _('Now ↑'), numeric: true,
	  value: function(d) { return d.tx_rate; }, text: function(d) { return nm.rate(d.tx_rate); } }
];

return view.extend({
	state: { key: 'rx_bytes', desc: true, selected: null },

	load: function() {
		return Promise.all([ nm.callStatus(), nm.callDevices(), nm.callQuotas() ]);
	},

	// The caps (config quota) and their state; nothing when there are none,
	// or when the daemon predates them.
	renderCaps: function(answer) {
		var quotas = (answer && Array.isArray(answer.quotas)) ? answer.quotas : [];
		if (!quotas.length)
			return '';
		var percent = function(q) { return q.limit_bytes ? Math.floor(100 * q.used_bytes / q.limit_bytes) : 0; };
		var state = function(q) {
			if (q.blocked)
				return E('span', { 'class': 'label warning' }, _('blocked'));
			if (q.lifted)
				return _('block lifted');
			return q.fired.length ? _('warned at %s').format(q.fired.map(function(t) { return t + ' %'; }).join(', ')) : _('within');
		};
		return E('div', { 'class': 'cbi-section' }, [
			E('h3', {}, _('Caps')),
			E('table', { 'class': 'table', 'id': 'netmeter-caps' }, [
				E('tr', { 'class': 'tr table-titles' }, [ _('Cap'), _('Counts'), _('Period'), _('Used'), _('Limit'), _('Share'), _('State') ]
					.map(function(t, i) { return E('th', { 'class': 'th' + (i >= 3 && i <= 5 ? ' right' : '') }, t); }))
			].concat(quotas.map(function(q) {
				var cells = [
					[ 'name', q.name ],
					[ 'target', '%s (%s, %s)'.format(q.target, q.target_kind, q.direction) ],
					[ 'period', '%s, %s'.format(q.period, _('since %s').format(new Date(q.period_start * 1000).toLocaleDateString())) ],
					[ 'used', nm.bytes(q.used_bytes) ],
					[ 'limit', nm.bytes(q.limit_bytes) ],
					[ 'share', percent(q) + ' %' ],
					[ 'state', state(q) ]
				];
				return E('tr', { 'class': 'tr', 'data-id': q.name }, cells.map(function(c, i) {
					return E('td', { 'class': 'td' + (i >= 3 && i <= 5 ? ' right' : ''), 'data-k': c[0] }, c[1]);
				}));
			})))
		]);
	},

	renderDetail: function(dev, status, placementKind, periods) {
		var mac = dev.mac;
		var since = function(unix) { return unix != null ? new Date(unix * 1000).toLocaleDateString() : ''; };
		var sums = E('table', { 'class': 'table', 'id': 'netmeter-sums' }, [
			E('tr', { 'class': 'tr table-titles' }, [ E('th', { 'class': 'th' }, ''),
				E('th', { 'class': 'th right' }, _('Download')), E('th', { 'class': 'th right' }, _('Upload')) ])
		].concat([
			[ 'today', _('Today'), dev.today ],
			[ 'month', periods ? _('Since %s').format(since(periods.month_start)) : _('This month'), dev.month ],
			[ 'total', _('Total'), dev ]
		].map(function(p) {
			return E('tr', { 'class': 'tr', 'data-id': p[0] }, [ E('td', { 'class': 'td' }, p[1]),
				E('td', { 'class': 'td right' }, p[2] ? nm.bytes(p[2].rx_bytes) : '—'),
				E('td', { 'class': 'td right' }, p[2] ? nm.bytes(p[2].tx_bytes) : '—') ]);
		})));

		var protocols;
		if (Array.isArray(dev.protocols)) {
			protocols = E('table', { 'class': 'table', 'id': 'netmeter-protocols' }, [
				E('tr', { 'class': 'tr table-titles' }, [ E('th', { 'class': 'th' }, _('Protocol')),
					E('th', { 'class': 'th right' }, _('Download')), E('th', { 'class': 'th right' }, _('Upload')) ])
			].concat(dev.protocols.map(function(p) {
				return E('tr', { 'class': 'tr', 'data-id': p['class'] }, [ E('td', { 'class': 'td' }, p['class']),
					E('td', { 'class': 'td right' }, nm.bytes(p.rx_bytes)), E('td', { 'class': 'td right' }, nm.bytes(p.tx_bytes)) ]);
			})));
		}
		else {
			protocols = E('p', { 'id': 'netmeter-protocols' }, placementKind == 'conntrack'
				? _('No protocol classes for this device yet.')
				: _("A breakdown by protocol needs option placement 'conntrack' (Services → netmeter); this placement (%s) counts packets, not flows.").format(placementKind || '?'));
		}

		return E('div', { 'class': 'cbi-section', 'id': 'netmeter-detail' }, [
			E('h3', { 'id': 'netmeter-selected' }, (dev.hostname ? dev.hostname + ' ' : '') + '(' + mac + ')'),
			sums,
			nm.historyPanel([ [ 'hour', _('Hourly') ], [ 'day', _('Daily') ], [ 'month', _('Monthly') ] ], 'hour',
				function(p) { return nm.callHistory(null, mac, p); }),
			E('h4', {}, _('By protocol')),
			protocols
		]);
	},

	update: function(status, answer) {
		var self = this;
		var problem = nm.problem(answer) || nm.problem(status);
		dom.content(this.problemBox, problem || '');
		if (problem) {
			dom.content(this.tableBox, '');
			return;
		}
		var pd = status.per_device || {};
		dom.content(this.noteBox, pd.active === false
			? E('div', { 'class': 'alert-message notice' }, _('Per-device accounting is off: %s').format(pd.off_reason || '?'))
			: '');
		var devices = answer.devices || [];
		this.devices = devices;
		this.periods = answer.periods;
		this.placementKind = pd.placement_kind;
		dom.content(this.tableBox, nm.sortableTable('netmeter-devices', columns, devices, this.state,
			function(d) { return d.mac; },
			function(d) { self.select(d); },
			_('No devices counted yet')));
	},

	select: function(dev) {
		this.state.selected = dev.mac;
		this.update(this.status, { devices: this.devices, periods: this.periods });
		dom.content(this.detailBox, this.renderDetail(dev, this.status, this.placementKind, this.periods));
	},

	render: function(data) {
		var self = this;
		this.status = data[0];
		this.problemBox = E('div');
		this.noteBox = E('div');
		this.tableBox = E('div', { 'style': 'overflow-x:auto' });
		this.detailBox = E('div', {}, E('p', {}, E('em', {}, _('Select a device for its history.'))));
		this.capsBox = E('div', {}, this.renderCaps(data[2]));
		this.update(data[0], data[1]);

		poll.add(function() {
			return Promise.all([ nm.callStatus(), nm.callDevices(), nm.callQuotas() ]).then(function(r) {
				self.status = r[0];
				self.update(r[0], r[1]);
				dom.content(self.capsBox, self.renderCaps(r[2]));
			});
		}, 5);

		return E([], [
			E('h2', {}, _('Bandwidth (netmeter): devices')),
			E('div', { 'class': 'cbi-map-descr' },
				_('Traffic of every LAN device between it and beyond the router, as netmeter counts it. Click a column title to sort, a row for its history.')),
			this.problemBox,
			this.noteBox,
			this.capsBox,
			E('div', { 'class': 'cbi-section' }, this.tableBox),
			this.detailBox
		]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
