// The page's stylesheet and script (report/report_page.css and .js),
// compiled into the binary so `clinrl report` needs no files at run time.
#pragma once

namespace clinrl::report {

const char* ReportPageStyle();
const char* ReportPageScript();

}  // namespace clinrl::report
