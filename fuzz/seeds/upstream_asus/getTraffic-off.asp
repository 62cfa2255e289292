var array_traffic = new Array();
var router_traffic = new Array();
array_traffic = ;

router_traffic = ;
