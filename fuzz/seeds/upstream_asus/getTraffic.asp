var array_traffic = new Array();
var router_traffic = new Array();
array_traffic = [["AC:89:95:12:34:56", "874315520", "3221225472"], ["3C:22:FB:AB:CD:EF", "15011840", "402653184"], ["F0:9F:C2:01:02:03", "63140", "74613"]];
router_traffic = ["1893470208", "4019183616"];

