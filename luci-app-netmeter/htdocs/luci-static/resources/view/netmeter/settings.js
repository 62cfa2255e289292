'use strict';
'require view';
'require form';

// Services → netmeter: /etc/config/netmeter. Save & Apply commits through
// rpcd; the init script's reload trigger (procd_add_reload_trigger) then
// sends the daemon SIGHUP. The API token is left out of this form: the
// views never need it (rpcd asks the daemon).

function absolutePath(section_id, value) {
	return (value == null || value == '' || /^\/[^\0]*$/.test(value)) ? true : _('An absolute path, such as /etc/netmeter');
}

return view.extend({
	render: function() {
		var m = new form.Map('netmeter', _('netmeter'),
			_('Per-device and per-interface bandwidth accounting. Saved changes reload the daemon; a new listen address takes a restart (/etc/init.d/netmeter restart).'));

		// The first `config netmeter` section, named ('main', as shipped) or
		// not: netmeter refuses a second one.
		var s = m.section(form.TypedSection, 'netmeter', _('Settings'));
		s.anonymous = true;
		s.addremove = false;
		s.tab('general', _('General'));
		s.tab('storage', _('Storage'));
		s.tab('history', _('History'));

		var o = s.taboption('general', form.Value, 'refresh_interval', _('Refresh interval (s)'),
			_('Seconds between reads of the kernel\'s counters.'));
		o.datatype = 'range(1,3600)';
		o.placeholder = '10';

		o = s.taboption('general', form.DynamicList, 'lan_interface', _('LAN interfaces'),
			_('Devices behind these interfaces (exact names, such as br-lan) are counted.'));
		o.datatype = 'netdevname';

		o = s.taboption('general', form.DynamicList, 'lan_subnet', _('LAN subnets'),
			_('Narrow the devices to these networks; none = the interfaces\' own subnets.'));
		o.datatype = 'cidr';

		o = s.taboption('general', form.DynamicList, 'interface', _('Interfaces'),
			_('Glob patterns of the interfaces to account (such as eth*); none = every interface.'));
		o.datatype = 'maxlength(64)';

		o = s.taboption('general', form.DynamicList, 'exclude_interface', _('Excluded interfaces'));
		o.datatype = 'maxlength(64)';

		o = s.taboption('general', form.DynamicList, 'listen', _('Listen addresses'),
			_('IP:PORT of the API (or [IPv6]:PORT). Beyond loopback consider a token.'));
		o.datatype = 'ipaddrport(1)';
		o.placeholder = '127.0.0.1:9750';

		o = s.taboption('general', form.ListValue, 'placement', _('Placement'),
			_('Where the counting happens; conntrack also counts what hardware flow offloading hides and gives the protocol breakdown.'));
		o.value('auto', _('auto'));
		o.value('netdev', 'netdev');
		o.value('forward', 'forward');
		o.value('conntrack', 'conntrack');
		o.default = 'auto';

		o = s.taboption('general', form.Value, 'max_devices', _('Maximum devices'));
		o.datatype = 'range(1,65536)';
		o.placeholder = '1024';

		o = s.taboption('general', form.Value, 'max_flows', _('Maximum flows (conntrack)'));
		o.datatype = 'range(64,4194304)';
		o.placeholder = '65536';
		o.depends('placement', 'conntrack');
		o.depends('placement', 'auto');

		o = s.taboption('storage', form.Value, 'database_directory', _('Database directory'),
			_('History and totals on flash.'));
		o.validate = absolutePath;
		o.placeholder = '/etc/netmeter';

		o = s.taboption('storage', form.Value, 'spool_directory', _('Spool directory'),
			_('A copy on tmpfs, for crashes.'));
		o.validate = absolutePath;
		o.placeholder = '/var/lib/netmeter';

		o = s.taboption('storage', form.Value, 'spool_interval', _('Spool interval (s)'));
		o.datatype = 'range(10,86400)';
		o.placeholder = '300';

		o = s.taboption('storage', form.Value, 'commit_interval', _('Commit interval (s)'));
		o.datatype = 'range(60,604800)';
		o.placeholder = '3600';

		o = s.taboption('storage', form.Value, 'month_rotate', _('Billing month starts on day'));
		o.datatype = 'range(1,28)';
		o.placeholder = '1';

		[
			[ 'history_fiveminute_hours', _('Interfaces: 5-minute history (hours)'), 48, 'uinteger' ],
			[ 'history_hourly_days', _('Interfaces: hourly history (days)'), 7, 'range(0,62)' ],
			[ 'history_daily_days', _('Interfaces: daily history (days)'), 62, 'range(0,3660)' ],
			[ 'history_monthly_months', _('Interfaces: monthly history (months)'), 36, 'range(0,600)' ],
			[ 'history_yearly_years', _('Interfaces: yearly history (years)'), 10, 'range(0,100)' ],
			[ 'device_hourly_hours', _('Devices: hourly history (hours)'), 72, 'range(0,744)' ],
			[ 'device_daily_days', _('Devices: daily history (days)'), 62, 'uinteger' ],
			[ 'device_monthly_months', _('Devices: monthly history (months)'), 24, 'uinteger' ],
			[ 'device_yearly_years', _('Devices: yearly history (years)'), 10, 'uinteger' ]
		].forEach(function(h) {
			var v = s.taboption('history', form.Value, h[0], h[1]);
			v.datatype = h[3];
			v.placeholder = String(h[2]);
		});

		s = m.section(form.GridSection, 'device', _('Devices'),
			_('A device\'s own name and group, by MAC address.'));
		s.anonymous = true;
		s.addremove = true;
		s.nodescriptions = true;

		o = s.option(form.Value, 'mac', _('MAC address'));
		o.datatype = 'macaddr';
		o.rmempty = false;

		o = s.option(form.Value, 'name', _('Name'));
		o.datatype = 'maxlength(64)';

		o = s.option(form.Value, 'group', _('Group'));
		o.datatype = 'maxlength(64)';

		return m.render();
	}
});
