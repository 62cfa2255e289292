'use strict';
'require view';
'require poll';
'require dom';
'require netmeter.common as nm';

// Status → Bandwidth (netmeter) → Interfaces: the router's interfaces with
// their history, and the upstream routers when the full build reads them.

var columns = [
	{ key: 'name', title: _('Interface'), value: function(i) { return i.name; },
	  text: function(i) { return i.present ? i.name : E('span', {}, [ i.name, ' ', E('em', {}, _('(gone)')) ]); } },
	{ key: 'rx_bytes', title: _('Received'), numeric: true,
	  value: function(i) { return i.rx_bytes; }, text: function(i) { return nm.bytes(i.rx_bytes); } },
	{ key: 'tx_bytes', title: _('Sent'), numeric: true,
	  value: function(i) { return i.tx_bytes; }, text: function(i) { return nm.bytes(i.tx_bytes); } },
	{ key: 'rx_rate', title: _('Receiving now'), numeric: true,
	  value: function(i) { return i.rx_rate; }, text: function(i) { return nm.rate(i.rx_rate); } },
	{ key: 'tx_rate', title: _('Sending now'), numeric: true,
	  value: function(i) { return i.tx_rate; }, text: function(i) { return nm.rate(i.tx_rate); } },
	{ key: 'errors', title: _('Errors'), numeric: true,
	  value: function(i) { return (i.rx_errors || 0) + (i.tx_errors || 0); } }
];

function upstreamTable(answer) {
	if (answer && answer.error == 'http' && answer.status == 404)
		return E('p', { 'id': 'netmeter-upstream' }, answer.message);
	var bad = nm.problem(answer);
	if (bad)
		return bad;
	var sources = answer.sources || [];
	if (!sources.length)
		return E('p', { 'id': 'netmeter-upstream' }, _('No upstream routers configured (config upstream sections).'));
	function pair(x) { return x ? nm.bytes(x.rx_bytes) + ' / ' + nm.bytes(x.tx_bytes) : '—'; }
	return E('table', { 'class': 'table', 'id': 'netmeter-upstream' }, [
		E('tr', { 'class': 'tr table-titles' }, [ _('Name'), _('Type'), _('State'),
			_('WAN down / up'), _('Double-NAT difference (down / up)') ].map(function(t) { return E('th', { 'class': 'th' }, t); }))
	].concat(sources.map(function(s) {
		return E('tr', { 'class': 'tr', 'data-id': s.name }, [
			E('td', { 'class': 'td' }, s.name), E('td', { 'class': 'td' }, s.type),
			E('td', { 'class': 'td' }, s.ok ? _('OK') : (s.stopped ? _('stopped: ') : _('failing: ')) + (s.last_error || '')),
			E('td', { 'class': 'td' }, pair(s.wan)), E('td', { 'class': 'td' }, pair(s.bypass))
		]);
	})));
}

return view.extend({
	state: { key: 'name', desc: false, selected: null },

	load: function() {
		return Promise.all([ nm.callInterfaces(), nm.callUpstream() ]);
	},

	update: function(answer) {
		var self = this;
		var problem = nm.problem(answer);
		dom.content(this.problemBox, problem || '');
		if (problem)
			return dom.content(this.tableBox, '');
		this.interfaces = answer.interfaces || [];
		dom.content(this.tableBox, nm.sortableTable('netmeter-interfaces', columns, this.interfaces, this.state,
			function(i) { return i.name; }, function(i) { self.select(i); }, _('No interfaces counted yet')));
	},

	select: function(iface) {
		this.state.selected = iface.name;
		this.update({ interfaces: this.interfaces });
		dom.content(this.detailBox, E('div', { 'class': 'cbi-section', 'id': 'netmeter-detail' }, [
			E('h3', { 'id': 'netmeter-selected' }, iface.name),
			nm.historyPanel([ [ 'fiveminute', _('5 minutes') ], [ 'hour', _('Hourly') ], [ 'day', _('Daily') ],
				[ 'month', _('Monthly') ] ], 'hour', function(p) { return nm.callHistory(iface.name, null, p); })
		]));
	},

	render: function(data) {
		var self = this;
		this.problemBox = E('div');
		this.tableBox = E('div', { 'style': 'overflow-x:auto' });
		this.detailBox = E('div', {}, E('p', {}, E('em', {}, _('Select an interface for its history.'))));
		this.upstreamBox = E('div', {}, upstreamTable(data[1]));
		this.update(data[0]);

		poll.add(function() {
			return Promise.all([ nm.callInterfaces(), nm.callUpstream() ]).then(function(r) {
				self.update(r[0]);
				dom.content(self.upstreamBox, upstreamTable(r[1]));
			});
		}, 5);

		return E([], [
			E('h2', {}, _('Bandwidth (netmeter): interfaces')),
			E('div', { 'class': 'cbi-map-descr' }, _('Bytes as the kernel counts them, link layer included.')),
			this.problemBox,
			E('div', { 'class': 'cbi-section' }, this.tableBox),
			this.detailBox,
			E('div', { 'class': 'cbi-section' }, [ E('h3', {}, _('Upstream routers')), this.upstreamBox ])
		]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
